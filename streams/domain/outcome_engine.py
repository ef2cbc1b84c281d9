"""The outcome engine: one outcomes partition's daily aggregates, sealed after the retention. Pure.

Each OutcomeCounted (a case's counted conclusion, or its retraction from a day it left) is folded into
its day's aggregate (streams.domain.outcomes.DailyOutcome: any order or repetition gives the same
aggregate), and every change is published whole as OutcomeStatsUpdated.

An aggregate is stored as its key (``a/<stats_key>``, written once, before its cases) and one entry per case
(``c/<stats_key>⇥<case>``, with the version it was set at), so a change logs one small record, not the day.
A change's version is its record's offset + 1 in this partition: it grows with every change of an aggregate
(a stats key always reads from one partition), and a batch read again after a crash numbers its changes as
the first time whatever part of its cases reached the changelog.

State stays bounded: once every case-events partition has announced progress past a day's end plus the
retention (ClockTicked ``cases/<n>``), no case can change that day any more (a case is forgotten after
the retention), so the day's aggregates are dropped; their last version stays in ClickHouse. A change
for a day already sealed is dead-lettered (``BeyondRetention``), never silently applied to a fresh count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from schemas.event import Event
from streams.domain.engine import META, Agenda, Changes, Emit, Frontier, Record, flush_order, sources_of
from streams.domain.outcomes import Contribution, DailyOutcome, day_end
from streams.domain.routing import derived_dead_letter

KEY_FIELDS = ("stats_key", "street_code", "grid_code", "category", "team", "local_day")
HEAD, CASE = "a/", "c/"


def head_key(stats_key: str) -> str:
    return f"{HEAD}{stats_key}"


def case_key(stats_key: str, case: str) -> str:
    return f"{CASE}{stats_key}\t{case}"


@dataclass(frozen=True)
class Stored:
    """A case's contribution as stored: the contribution and the aggregate version it was set at."""

    contribution: Contribution
    version: int


def _stored(aggregates: dict[str, DailyOutcome], key: str) -> Any:
    """A written key's value as the changelog stores it: a head is the aggregate's key fields, a case its
    contribution with its version."""
    if key.startswith(HEAD):
        return aggregates[key[len(HEAD) :]].key
    stats_key, _, case = key[len(CASE) :].rpartition("\t")
    agg = aggregates[stats_key]
    return Stored(agg.cases[case], agg.versions[case])


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

    def load(self, partition: int, meta: OutcomeMeta | None, entries: Iterable[tuple[str, Any]]) -> None:
        """From the stored entries: heads (key fields), cases (``Stored``) and, from state written before cases
        were stored apart, whole aggregates (under their bare stats key; rewritten the new way at the next flush)."""
        meta = meta or OutcomeMeta()
        heads: dict[str, Mapping[str, Any]] = {}
        cases: dict[str, dict[str, Stored]] = {}
        whole: list[tuple[str, DailyOutcome]] = []
        for key, value in entries:
            if key.startswith(HEAD):
                heads[key[len(HEAD) :]] = value
            elif key.startswith(CASE):
                stats_key, _, case = key[len(CASE) :].rpartition("\t")
                cases.setdefault(stats_key, {})[case] = value
            else:
                whole.append((key, value))
        aggregates = {
            k: DailyOutcome(
                head,
                {c: s.contribution for c, s in cases.get(k, {}).items()},
                versions={c: s.version for c, s in cases.get(k, {}).items()},
            )
            for k, head in heads.items()
        }
        state = OutcomePartition(meta, aggregates, Frontier(self.case_partitions, meta.cases))
        for old_key, agg in whole:
            stats_key = agg.key["stats_key"]
            state.aggregates[stats_key] = agg
            state.changes.delete(old_key)
            state.changes.put(head_key(stats_key))
            for case in agg.cases:
                state.changes.put(case_key(stats_key, case))
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
        return flush_order(lambda k: _stored(state.aggregates, k), state.changes, state.meta)

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
                for case in state.aggregates.pop(key).cases:
                    state.changes.delete(case_key(key, case))
                state.changes.delete(head_key(key))
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
            state.changes.put(head_key(key))  # before its cases: a case is never stored without its head
        if not current.apply(f, record.offset + 1):
            return []
        state.changes.put(case_key(key, f["case_id"]))
        return [Emit("outcome-stats", current.stats_event(self.success, record.event.occurred_at))]


def _too_late(record: Record, sealed_at: datetime) -> Event:
    f = record.event.fields
    reason = (
        f"outcome of case {f['case_id']!r} for {f['local_day']}: that day's aggregates were sealed at "
        f"{sealed_at.isoformat()} (its end plus the retention); the published count stands"
    )
    at = record.event.occurred_at
    return derived_dead_letter(record.origin, record.key, record.value, "BeyondRetention", reason, at)
