"""The projection writer: idempotent Arrow inserts and per-partition high-water marks.

Idempotence has three lines:
1. Each table knows, per source partition, the highest Kafka offset it holds (its high-water
   mark); a consumer that restarts below it skips what is already there. An insert is one
   atomic part, so the mark never runs ahead of the rows.
2. Each insert carries a deduplication token built from its offset ranges, so a retry of the
   same batch after a lost acknowledgement is dropped by ClickHouse.
3. A table whose facts can arrive again at other offsets (derived events re-published after a crash, a
   field event re-sent upstream) is asked which of the batch's identities it already holds, and those rows
   are left out. The look-up narrows on the leading column of the table's sort key, which a repeat shares
   with its first copy (its time, case, aggregate or origin), so it reads the batch's part of the table and
   its cost does not grow with the table.
ReplacingMergeTree keys collapse on merge whatever would get past these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from projections.cluster import insert_settings
from projections.errors import ProjectionError, TransientSinkError
from projections.tables import Rows

# Codes ClickHouse uses for overload and timeouts: worth a retry with the same token.
_TRANSIENT_CODES = frozenset({159, 202, 203, 209, 210, 241, 252, 285, 425, 999})


_BETWEEN = (
    "{{{p}at:Identifier}} BETWEEN fromUnixTimestamp64Milli({{{p}lo{i}:Int64}}, 'UTC') "
    "AND fromUnixTimestamp64Milli({{{p}hi{i}:Int64}}, 'UTC')"
)
_EPOCH, _MS = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)
SPAN_GAP_MS = 3_600_000  # times closer than this share one span of the look-up
MAX_SPANS = 32


def time_spans(millis: Iterable[int]) -> list[tuple[int, int]]:
    """The times as few closed spans [lo, hi] (ms) as cover them with no gap over SPAN_GAP_MS inside one; at
    most MAX_SPANS (the widest gaps are the ones kept)."""
    times = sorted(set(millis))
    if not times:
        return []
    gaps = sorted((b - a, i) for i, (a, b) in enumerate(pairwise(times)) if b - a > SPAN_GAP_MS)
    cuts = sorted(i for _, i in gaps[-(MAX_SPANS - 1) :])
    spans, start = [], 0
    for i in cuts:
        spans.append((times[start], times[i]))
        start = i + 1
    spans.append((times[start], times[-1]))
    return spans


def _millis(value: Any) -> int:
    """A row's timestamp (an aware datetime) in epoch milliseconds, truncated as DateTime64(3) stores it."""
    return (value - _EPOCH) // _MS if isinstance(value, datetime) else int(value)


def dedup_token(table: str, ranges: Iterable[tuple[str, int, int, int]]) -> str:
    """``table`` plus every (topic, partition, first, last) range, hashed to a short token."""
    text = table + "|" + ";".join(f"{t}/{p}/{a}-{b}" for t, p, a, b in sorted(ranges))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _lookup(n: int, rows: Rows, parameters: dict[str, Any]) -> str:
    """The look-up of one table's repeats as the ``n``-th branch of a UNION ALL; fills its parameters."""
    spec = rows.spec
    p = f"t{n}_"
    parameters.update({p + "table": spec.name, p + "column": spec.identity, p + "values": rows.identities()})
    where = f"{{{p}column:Identifier}} IN {{{p}values:Array(String)}}"
    if spec.located_by is not None:
        parameters[p + "at"] = spec.located_by
        located = rows.column(spec.located_by)
        if pa.types.is_timestamp(spec.schema.field(spec.located_by).type):
            spans = time_spans(_millis(v) for v in located)
            where += " AND (" + " OR ".join(_BETWEEN.format(p=p, i=i) for i in range(len(spans))) + ")"
            for i, (lo, hi) in enumerate(spans):
                parameters[f"{p}lo{i}"], parameters[f"{p}hi{i}"] = lo, hi
        else:
            where += f" AND {{{p}at:Identifier}} IN {{{p}keys:Array(String)}}"
            parameters[p + "keys"] = sorted(set(located))
    return (
        f"SELECT DISTINCT {{{p}table:String}}, {{{p}column:Identifier}} FROM {{{p}table:Identifier}} WHERE {where}"
    )


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

    def existing(self, batch: Sequence[Rows]) -> dict[str, set[Any]]:
        """Which of the rows' identities each table already holds, for every table of the batch in one query (a
        query's fixed cost in the engine is most of a small look-up's): a look-up on each sort key's leading column
        (the batch's time ranges or keys), then the identities among the rows found there."""
        branches: list[str] = []
        parameters: dict[str, Any] = {}
        for n, rows in enumerate(r for r in batch if r.spec.identity is not None and len(r)):
            branches.append(_lookup(n, rows, parameters))
        found: dict[str, set[Any]] = {rows.spec.name: set() for rows in batch}
        if not branches:
            return found
        try:
            result = self.client.query(" UNION ALL ".join(branches), parameters=parameters)
        except ClickHouseError as exc:
            raise _classify(exc) from exc
        for table, identity in result.result_rows:
            found[table].add(identity)
        return found

    def write(self, rows: Rows, token: str) -> None:
        if not len(rows):
            return
        try:
            settings = {"insert_deduplication_token": token, **self.insert_settings}
            self.client.insert_arrow(rows.spec.name, rows.to_arrow(), settings=settings)
        except ClickHouseError as exc:
            raise _classify(exc) from exc
