"""Which events feed which table, and the row each event becomes. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from projections.tables import (
    DEADLETTER_REDRIVES,
    DEADLETTERS,
    DISPATCHES,
    EVENTS,
    HOTSPOTS,
    LIFECYCLE,
    OUTCOME_DAILY,
    REASSIGNMENTS,
    SLA_ALERTS,
    SLA_BREACHES,
    TRIAGE,
    TableSpec,
)
from schemas.codec import Codec
from schemas.event import Event
from schemas.privacy import Redactor

Coordinates = tuple[str, int, int]


@dataclass(frozen=True)
class RowContext:
    codec: Codec
    redactor: Redactor
    ingested_at: datetime


RowFn = Callable[[Event, Coordinates, RowContext], tuple[Any, ...]]


def event_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    """The raw log's row; personal fields are replaced by token and mask before anything is stored."""
    schema = ctx.codec.schema_for(event)
    body = ctx.redactor.redact(schema, ctx.codec.to_json(event))
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    f = event.fields
    return (
        event.event_id,
        event.type,
        str(f[schema.key_field]),
        event.source,
        event.occurred_at,
        ctx.ingested_at,
        event.writer,
        payload,
        *at,
    )


def deadletter_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    """Metadata and a digest of the rejected message, never its bytes: they may hold personal data."""
    f = event.fields
    payload: bytes = f["payload"]
    return (
        event.event_id,
        f["origin"],
        f["error_class"],
        f["reason"],
        f["source_topic"],
        f["source_partition"],
        f["source_offset"],
        len(payload),
        hashlib.sha256(payload).hexdigest(),
        event.occurred_at,
        ctx.ingested_at,
        *at,
    )


def fields_row(spec: TableSpec) -> RowFn:
    """A row that takes each column from the event field of the same name (envelope fields and the
    Kafka coordinates included): for tables whose columns are the event's own fields."""
    data_columns = [c for c in spec.columns if not c.startswith("kafka_")]
    # Dates travel as ISO strings in the contract.
    dates = {f.name for f in spec.schema if pa.types.is_date32(f.type)}

    def row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
        envelope = {
            "event_id": event.event_id,
            "occurred_at": event.occurred_at,
            "type": event.type,
            "ingested_at": ctx.ingested_at,
        }
        f = event.fields
        values = [envelope[c] if c in envelope else f.get(c) for c in data_columns]
        if dates:
            values = [
                date.fromisoformat(str(v)) if c in dates else v for c, v in zip(data_columns, values, strict=True)
            ]
        return (*[list(v) if isinstance(v, tuple) else v for v in values], *at)

    return row


LIFECYCLE_TYPES = frozenset(
    {"InstructionAccepted", "PartyContacted", "ResponderArrived", "MediationConcluded", "CaseClosed"}
)


@dataclass(frozen=True)
class Projection:
    """A table, the event types that feed it (None: every event type), and the row function."""

    spec: TableSpec
    types: frozenset[str] | None
    row: RowFn

    def takes(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types


DEADLETTER_TYPE = "DeadLettered"
REDRIVE_TYPE = "DeadLetterRedriven"
# The dead-letter topic's records have tables of their own and stay out of the raw log.
DEADLETTER_TOPIC_TYPES = frozenset({DEADLETTER_TYPE, REDRIVE_TYPE})

# The raw log takes every event except dead letters, which keep personal bytes and have their own table.
EVENT_LOG = Projection(EVENTS, None, event_row)
PROJECTIONS: tuple[Projection, ...] = (
    EVENT_LOG,
    Projection(DEADLETTERS, frozenset({DEADLETTER_TYPE}), deadletter_row),
    Projection(DEADLETTER_REDRIVES, frozenset({REDRIVE_TYPE}), fields_row(DEADLETTER_REDRIVES)),
    Projection(TRIAGE, frozenset({"AlarmTriaged"}), fields_row(TRIAGE)),
    Projection(DISPATCHES, frozenset({"CaseDispatched"}), fields_row(DISPATCHES)),
    Projection(SLA_ALERTS, frozenset({"SlaAtRisk", "SlaOverdue"}), fields_row(SLA_ALERTS)),
    Projection(SLA_BREACHES, frozenset({"SlaBreached"}), fields_row(SLA_BREACHES)),
    Projection(REASSIGNMENTS, frozenset({"CaseReassigned"}), fields_row(REASSIGNMENTS)),
    Projection(LIFECYCLE, LIFECYCLE_TYPES, fields_row(LIFECYCLE)),
    Projection(OUTCOME_DAILY, frozenset({"OutcomeStatsUpdated"}), fields_row(OUTCOME_DAILY)),
    Projection(HOTSPOTS, frozenset({"HotspotDetected", "HotspotUpdated", "HotspotCooled"}), fields_row(HOTSPOTS)),
)


# Ticks are the worker's clock, one per partition per second: not facts worth a row. The others
# are internal hand-offs between agents, on internal topics the projector does not read.
UNPROJECTED = frozenset({"ClockTicked", "AssignmentReleased", "OutcomeCounted"})


def projections_for(event_type: str) -> list[Projection]:
    if event_type in UNPROJECTED:
        return []
    if event_type in DEADLETTER_TOPIC_TYPES:
        return [p for p in PROJECTIONS if p.types is not None and p.takes(event_type)]
    return [p for p in PROJECTIONS if p.takes(event_type)]
