"""The projection writer: idempotent Arrow inserts and per-partition high-water marks.

Idempotence has three lines:
1. Each table knows, per source partition, the highest Kafka offset it holds (its high-water
   mark); a consumer that restarts below it skips what is already there. An insert is one
   atomic part, so the mark never runs ahead of the rows.
2. Each insert carries a deduplication token built from its offset ranges, so a retry of the
   same batch after a lost acknowledgement is dropped by ClickHouse.
3. ReplacingMergeTree keys end with the Kafka coordinates, so a re-delivered row collapses on merge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from projections.cluster import insert_settings
from projections.errors import ProjectionError, TransientSinkError
from projections.tables import Rows

# Codes ClickHouse uses for overload and timeouts: worth a retry with the same token.
_TRANSIENT_CODES = frozenset({159, 202, 203, 209, 210, 241, 252, 285, 425, 999})


def dedup_token(table: str, ranges: Iterable[tuple[str, int, int, int]]) -> str:
    """``table`` plus every (topic, partition, first, last) range, hashed to a short token."""
    text = table + "|" + ";".join(f"{t}/{p}/{a}-{b}" for t, p, a, b in sorted(ranges))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _classify(exc: ClickHouseError) -> ProjectionError:
    if isinstance(exc, OperationalError):
        return TransientSinkError(str(exc))
    code = getattr(exc, "code", None)
    if isinstance(exc, DatabaseError) and code in _TRANSIENT_CODES:
        return TransientSinkError(str(exc))
    return ProjectionError(str(exc))


class ClickHouseSink:
    """Writes Rows into ClickHouse through clickhouse-connect (chDB or a server)."""

    def __init__(self, client: Client, cluster: str = "") -> None:
        self.client = client
        self.insert_settings = insert_settings(cluster)  # on a cluster: the insert returns once every shard has it

    def high_water(self, table: str, topic: str) -> dict[int, int]:
        """Highest offset per partition of ``topic`` that ``table`` already holds."""
        try:
            result = self.client.query(
                "SELECT kafka_partition, max(kafka_offset) FROM {table:Identifier} "
                "WHERE kafka_topic = {topic:String} GROUP BY kafka_partition",
                parameters={"table": table, "topic": topic},
            )
        except ClickHouseError as exc:
            raise _classify(exc) from exc
        return {int(p): int(o) for p, o in result.result_rows}

    def existing(self, table: str, column: str, values: list[Any]) -> set[Any]:
        """Which of ``values`` the table's ``column`` already holds (a primary-key lookup)."""
        if not values:
            return set()
        try:
            result = self.client.query(
                "SELECT DISTINCT {column:Identifier} FROM {table:Identifier} "
                "WHERE {column:Identifier} IN {values:Array(String)}",
                parameters={"table": table, "column": column, "values": values},
            )
        except ClickHouseError as exc:
            raise _classify(exc) from exc
        return {row[0] for row in result.result_rows}

    def write(self, rows: Rows, token: str) -> None:
        if not len(rows):
            return
        try:
            settings = {"insert_deduplication_token": token, **self.insert_settings}
            self.client.insert_arrow(rows.spec.name, rows.to_arrow(), settings=settings)
        except ClickHouseError as exc:
            raise _classify(exc) from exc
