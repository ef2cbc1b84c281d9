"""The outcome engine: one outcomes partition's daily aggregates, sealed after the retention. Pure.

Each OutcomeCounted (a case's counted conclusion, or its retraction from a day it left) is folded into
its day's aggregate (streams.domain.outcomes.DailyOutcome: any order or repetition gives the same
aggregate), and every change is published whole as OutcomeStatsUpdated.

State stays bounded: once every case-events partition has announced progress past a day's end plus the
retention (ClockTicked ``cases/<n>``), no case can change that day any more (a case is forgotten after
the retention), so the day's aggregates are dropped; their last version stays in ClickHouse. A change
for a day already sealed is dead-lettered (``BeyondRetention``), never silently applied to a fresh count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from schemas.event import Event
from streams.domain.engine import META, Agenda, Changes, Emit, Frontier, Record, flush_order, sources_of
from streams.domain.outcomes import DailyOutcome, day_end
from streams.domain.routing import WORKER_SOURCE, derived_id

KEY_FIELDS = ("stats_key", "street_code", "grid_code", "category", "team", "local_day")


@dataclass
class OutcomeMeta:
    cases: dict[int, datetime] = field(default_factory=dict)  # each case-events partition's announced progress


@dataclass
class OutcomePartition:
    meta: OutcomeMeta
    aggregates: dict[str, DailyOutcome]
    frontier: Frontier
    sealing: Agenda = field(default_factory=Agenda)
    changes: Changes = field(default_factory=Changes)


class OutcomeEngine:
    def __init__(self, case_partitions: int, retention: timedelta, success: frozenset[str]) -> None:
        self.case_partitions, self.retention, self.success = case_partitions, retention, success
        self.partitions: dict[int, OutcomePartition] = {}

    def load(self, partition: int, meta: OutcomeMeta | None, aggregates: Iterable[DailyOutcome]) -> None:
        meta = meta or OutcomeMeta()
        state = OutcomePartition(
            meta, {a.key["stats_key"]: a for a in aggregates}, Frontier(self.case_partitions, meta.cases)
        )
        for key, agg in state.aggregates.items():
            state.sealing.set(key, self._sealed_at(agg.key["local_day"]))
        self.partitions[partition] = state

    def loaded(self, partition: int) -> bool:
        return partition in self.partitions

    def forget(self) -> None:
        self.partitions.clear()

    def flush(self, partition: int) -> list[tuple[str, DailyOutcome | OutcomeMeta | None]]:
        state = self.partitions[partition]
        state.meta.cases = dict(state.frontier.known)
        return flush_order(state.aggregates, state.changes, state.meta)

    def announcements(self, partition: int) -> list[Emit]:
        return []  # nothing downstream waits on the aggregates

    def _sealed_at(self, local_day: str) -> datetime:
        return day_end(date.fromisoformat(local_day)) + self.retention

    def on_record(self, record: Record) -> list[Emit]:
        state = self.partitions[record.partition]
        event = record.event
        if not record.own:
            return []  # another deployment's counts: this one counts its own
        out: list[Emit] = []
        if event.type == "ClockTicked":
            source = sources_of(event.fields["tick_id"], "cases")
            if source is not None and state.frontier.announce(source, event.occurred_at):
                state.changes.put(META)
        elif event.type == "OutcomeCounted":
            out += self._count(state, record)
        progress = state.frontier.watermark
        if progress is not None:
            for key in state.sealing.pop_before(progress):
                del state.aggregates[key]
                state.changes.delete(key)
        return out

    def _count(self, state: OutcomePartition, record: Record) -> list[Emit]:
        f = record.event.fields
        key = f["stats_key"]
        current = state.aggregates.get(key)
        if current is None:
            sealed_at = self._sealed_at(f["local_day"])
            progress = state.frontier.watermark
            if progress is not None and progress > sealed_at:
                return [Emit("deadletter", _too_late(record, sealed_at))]
            current = DailyOutcome({k: f[k] for k in KEY_FIELDS})
            state.aggregates[key] = current
            state.sealing.set(key, sealed_at)
        if not current.apply(f):
            return []
        state.changes.put(key)
        return [Emit("outcome-stats", current.stats_event(self.success, record.event.occurred_at))]


def _too_late(record: Record, sealed_at: datetime) -> Event:
    topic, partition, offset = record.origin
    origin = f"{topic}/{partition}/{offset}"
    f = record.event.fields
    return Event(
        "DeadLettered",
        {
            "event_id": derived_id(origin, "BeyondRetention"),
            "occurred_at": record.event.occurred_at,
            "source": WORKER_SOURCE,
            "origin": origin,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "source_key": record.key,
            "error_class": "BeyondRetention",
            "reason": f"outcome of case {f['case_id']!r} for {f['local_day']}: that day's aggregates were sealed "
            f"at {sealed_at.isoformat()} (its end plus the retention); the published count stands",
            "payload": record.value,
        },
    )
