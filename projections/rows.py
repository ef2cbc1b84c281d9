"""Which events feed which table, and the row each event becomes. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.tables import (
    DEADLETTERS,
    DISPATCHES,
    EVENTS,
    LIFECYCLE,
    REASSIGNMENTS,
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


def triage_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    f = event.fields
    return (
        event.event_id,
        f["case_id"],
        event.occurred_at,
        f["category"],
        f["priority"],
        f["disposition"],
        f["rule"],
        f["reason"],
        f["street_code"],
        f["grid_code"],
        f["place"],
        f["location_rule"],
        list(f["location_notes"]),
        f["caller_token"],
        ctx.ingested_at,
        *at,
    )


def dispatch_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    f = event.fields
    return (
        event.event_id,
        f["case_id"],
        event.occurred_at,
        f["category"],
        f["priority"],
        f["street_code"],
        f["grid_code"],
        f["team"],
        f["level"],
        f["assignee_id"],
        f["accept_by"],
        f["contact_by"],
        f["arrive_by"],
        f["rule"],
        f["place"],
        ctx.ingested_at,
        *at,
    )


def breach_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    f = event.fields
    return (
        event.event_id,
        f["case_id"],
        f["stage"],
        f["deadline"],
        event.occurred_at,
        f["street_code"],
        f["grid_code"],
        f["team"],
        f["assignee_id"],
        f["late_by_ms"],
        ctx.ingested_at,
        *at,
    )


def reassignment_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    f = event.fields
    return (
        event.event_id,
        f["case_id"],
        event.occurred_at,
        f["street_code"],
        f["team"],
        f["from_assignee"],
        f["to_assignee"],
        f["level"],
        f["step"],
        f["reason"],
        ctx.ingested_at,
        *at,
    )


def lifecycle_row(event: Event, at: Coordinates, ctx: RowContext) -> tuple[Any, ...]:
    f = event.fields
    return (
        event.event_id,
        f["case_id"],
        event.type,
        event.occurred_at,
        f.get("worker_id"),
        f.get("method"),
        f.get("outcome"),
        f.get("compensation"),
        ctx.ingested_at,
        *at,
    )


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

# The raw log takes every event except dead letters, which keep personal bytes and have their own table.
EVENT_LOG = Projection(EVENTS, None, event_row)
PROJECTIONS: tuple[Projection, ...] = (
    EVENT_LOG,
    Projection(DEADLETTERS, frozenset({DEADLETTER_TYPE}), deadletter_row),
    Projection(TRIAGE, frozenset({"AlarmTriaged"}), triage_row),
    Projection(DISPATCHES, frozenset({"CaseDispatched"}), dispatch_row),
    Projection(SLA_BREACHES, frozenset({"SlaBreached"}), breach_row),
    Projection(REASSIGNMENTS, frozenset({"CaseReassigned"}), reassignment_row),
    Projection(LIFECYCLE, LIFECYCLE_TYPES, lifecycle_row),
)


# Ticks are the worker's clock, one per partition per second: not facts worth a row.
UNPROJECTED = frozenset({"ClockTicked", "AssignmentReleased"})


def projections_for(event_type: str) -> list[Projection]:
    if event_type in UNPROJECTED:
        return []
    if event_type == DEADLETTER_TYPE:
        return [p for p in PROJECTIONS if p.types is not None and p.takes(event_type)]
    return [p for p in PROJECTIONS if p.takes(event_type)]
