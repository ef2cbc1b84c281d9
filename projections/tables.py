"""The projected tables' columns, as Arrow schemas, and the rows that fill them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

_TS = pa.timestamp("ms", tz="UTC")
_STR = pa.string()
_COORDINATES = [("kafka_topic", _STR), ("kafka_partition", pa.uint32()), ("kafka_offset", pa.uint64())]


@dataclass(frozen=True)
class TableSpec:
    """A projected table: its columns in insert order (ending with Kafka coordinates).

    ``identity`` names the column that identifies a row when the same fact can arrive twice at
    different offsets (our own at-least-once derived events); such rows are inserted once.
    ``located_by`` names the leading column of the table's sort key, which a repeat shares with the row it
    repeats: the look-up for repeats reads only the batch's values of it (a time range, or the keys), so its
    cost follows the batch, not the table.
    """

    name: str
    schema: pa.Schema
    identity: str | None = None
    located_by: str | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def _spec(
    name: str,
    columns: Sequence[tuple[str, pa.DataType]],
    identity: str | None = None,
    located_by: str | None = None,
) -> TableSpec:
    return TableSpec(name, pa.schema([*columns, *_COORDINATES]), identity, located_by)


EVENTS = _spec(
    "events",
    [
        ("event_id", _STR),
        ("type", _STR),
        ("case_id", _STR),
        ("source", _STR),
        ("occurred_at", _TS),
        ("ingested_at", _TS),
        ("writer", _STR),
        ("payload", _STR),
    ],
)

DEADLETTERS = _spec(
    "deadletters",
    [
        ("event_id", _STR),
        ("origin", _STR),
        ("error_class", _STR),
        ("reason", _STR),
        ("source_topic", _STR),
        ("source_partition", pa.uint32()),
        ("source_offset", pa.uint64()),
        ("payload_bytes", pa.uint32()),
        ("payload_sha256", _STR),
        ("occurred_at", _TS),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="origin",
)

# One row per DeadLetterRedriven (alarmflow deadletter redrive): which dead letter went where, and when.
DEADLETTER_REDRIVES = _spec(
    "deadletter_redrives",
    [
        ("event_id", _STR),
        ("origin", _STR),
        ("error_class", _STR),
        ("deadletter_topic", _STR),
        ("deadletter_partition", pa.uint32()),
        ("deadletter_offset", pa.uint64()),
        ("redrive_topic", _STR),
        ("redrive_partition", pa.uint32()),
        ("redrive_offset", pa.uint64()),
        ("occurred_at", _TS),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="origin",
)

TRIAGE = _spec(
    "triage",
    [
        ("event_id", _STR),
        ("case_id", _STR),
        ("occurred_at", _TS),
        ("category", _STR),
        ("priority", pa.uint8()),
        ("disposition", _STR),
        ("rule", _STR),
        ("reason", _STR),
        ("street_code", _STR),
        ("grid_code", _STR),
        ("place", _STR),
        ("location_rule", _STR),
        ("location_notes", pa.list_(_STR)),
        ("caller_token", _STR),
        ("place_key", _STR),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="occurred_at",
)

DISPATCHES = _spec(
    "dispatches",
    [
        ("event_id", _STR),
        ("case_id", _STR),
        ("occurred_at", _TS),
        ("category", _STR),
        ("priority", pa.uint8()),
        ("street_code", _STR),
        ("grid_code", _STR),
        ("team", _STR),
        ("level", _STR),
        ("assignee_id", _STR),
        ("accept_by", _TS),
        ("contact_by", _TS),
        ("arrive_by", _TS),
        ("rule", _STR),
        ("place", _STR),
        ("sla_rule", _STR),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="occurred_at",
)


SLA_BREACHES = _spec(
    "sla_breaches",
    [
        ("event_id", _STR),
        ("case_id", _STR),
        ("stage", _STR),
        ("deadline", _TS),
        ("occurred_at", _TS),
        ("street_code", _STR),
        ("grid_code", _STR),
        ("team", _STR),
        ("assignee_id", _STR),
        ("late_by_ms", pa.int64()),
        ("sla_rule", _STR),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="occurred_at",
)

# The warnings before a breach (SlaAtRisk, SlaOverdue): at most one of each kind per (case, stage).
SLA_ALERTS = _spec(
    "sla_alerts",
    [
        ("event_id", _STR),
        ("type", _STR),
        ("case_id", _STR),
        ("stage", _STR),
        ("deadline", _TS),
        ("occurred_at", _TS),
        ("lead_ms", pa.int64()),
        ("street_code", _STR),
        ("grid_code", _STR),
        ("team", _STR),
        ("assignee_id", _STR),
        ("sla_rule", _STR),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="occurred_at",
)

REASSIGNMENTS = _spec(
    "reassignments",
    [
        ("event_id", _STR),
        ("case_id", _STR),
        ("occurred_at", _TS),
        ("street_code", _STR),
        ("team", _STR),
        ("from_assignee", _STR),
        ("to_assignee", _STR),
        ("level", _STR),
        ("step", pa.uint16()),
        ("reason", _STR),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="occurred_at",
)

# Field events of a case, typed, each event_id once: what the cases view folds.
LIFECYCLE = _spec(
    "lifecycle",
    [
        ("event_id", _STR),
        ("case_id", _STR),
        ("type", _STR),
        ("occurred_at", _TS),
        ("worker_id", _STR),
        ("method", _STR),
        ("outcome", _STR),
        ("compensation", pa.decimal128(12, 2)),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="case_id",
)


_COUNT = pa.uint32()

OUTCOME_DAILY = _spec(
    "outcome_daily",
    [
        ("event_id", _STR),
        ("stats_key", _STR),
        ("occurred_at", _TS),
        ("street_code", _STR),
        ("grid_code", _STR),
        ("category", _STR),
        ("team", _STR),
        ("local_day", pa.date32()),
        ("version", pa.uint64()),
        ("concluded", _COUNT),
        ("success", _COUNT),
        ("resolved", _COUNT),
        ("referred", _COUNT),
        ("escalated_to_police", _COUNT),
        ("unresolved", _COUNT),
        ("no_action_needed", _COUNT),
        ("success_outcomes", pa.list_(_STR)),
        ("compensation", pa.decimal128(18, 2)),
        ("duration_sum_ms", pa.int64()),
        ("p50_ms", pa.int64()),
        ("p90_ms", pa.int64()),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="stats_key",
)

HOTSPOTS = _spec(
    "hotspots",
    [
        ("event_id", _STR),
        ("type", _STR),
        ("occurred_at", _TS),
        ("hotspot_id", _STR),
        ("episode_id", _STR),
        ("place_key", _STR),
        ("place", _STR),
        ("family", _STR),
        ("street_code", _STR),
        ("grid_code", _STR),
        ("team", _STR),
        ("window_days", pa.uint16()),
        ("threshold", _COUNT),
        ("count", _COUNT),
        ("episode_started_at", _TS),
        ("sample_case_ids", pa.list_(_STR)),
        ("ingested_at", _TS),
    ],
    identity="event_id",
    located_by="occurred_at",
)


class Rows:
    """Rows for one table, in column order."""

    def __init__(self, spec: TableSpec, rows: Sequence[Sequence[Any]] = ()) -> None:
        self.spec = spec
        self.rows: list[Sequence[Any]] = list(rows)

    def append(self, values: Sequence[Any]) -> None:
        self.rows.append(values)

    def __len__(self) -> int:
        return len(self.rows)

    def identities(self) -> list[Any]:
        return self.column(self.spec.identity)

    def column(self, name: str | None) -> list[Any]:
        if name is None:
            return []
        index = self.spec.columns.index(name)
        return [row[index] for row in self.rows]

    def without(self, identities: set[Any]) -> Rows:
        """These rows minus those whose identity is in ``identities`` or repeats an earlier row's."""
        if self.spec.identity is None:
            return self
        index, seen, kept = self.spec.columns.index(self.spec.identity), set(identities), []
        for row in self.rows:
            if row[index] not in seen:
                seen.add(row[index])
                kept.append(row)
        return Rows(self.spec, kept)

    def to_arrow(self) -> pa.Table:
        columns = list(zip(*self.rows, strict=True)) if self.rows else [() for _ in self.spec.columns]
        arrays = [pa.array(col, type=field.type) for col, field in zip(columns, self.spec.schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=self.spec.schema)
