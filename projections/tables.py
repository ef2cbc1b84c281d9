"""The projected tables' columns, as Arrow schemas, and column-wise batches to fill them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

_TS = pa.timestamp("ms", tz="UTC")
_COORDINATES = [("kafka_topic", pa.string()), ("kafka_partition", pa.uint32()), ("kafka_offset", pa.uint64())]


@dataclass(frozen=True)
class TableSpec:
    """A projected table: its name and its columns in insert order, ending with Kafka coordinates."""

    name: str
    schema: pa.Schema

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def _spec(name: str, columns: Sequence[tuple[str, pa.DataType]]) -> TableSpec:
    return TableSpec(name, pa.schema([*columns, *_COORDINATES]))


EVENTS = _spec(
    "events",
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("case_id", pa.string()),
        ("source", pa.string()),
        ("occurred_at", _TS),
        ("ingested_at", _TS),
        ("writer", pa.string()),
        ("payload", pa.string()),
    ],
)

DEADLETTERS = _spec(
    "deadletters",
    [
        ("event_id", pa.string()),
        ("origin", pa.string()),
        ("error_class", pa.string()),
        ("reason", pa.string()),
        ("source_topic", pa.string()),
        ("source_partition", pa.uint32()),
        ("source_offset", pa.uint64()),
        ("payload_bytes", pa.uint32()),
        ("payload_sha256", pa.string()),
        ("occurred_at", _TS),
        ("ingested_at", _TS),
    ],
)


class Rows:
    """Rows for one table, kept column-wise so the Arrow table is built without copies per row."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self._columns: list[list[Any]] = [[] for _ in spec.columns]

    def append(self, values: Sequence[Any]) -> None:
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(self._columns[0])

    def to_arrow(self) -> pa.Table:
        arrays = [pa.array(col, type=field.type) for col, field in zip(self._columns, self.spec.schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=self.spec.schema)
