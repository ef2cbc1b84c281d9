"""The case engine: one case-events partition's cases, clock and dispatch progress. Pure.

It watches the SLA stages of every dispatched case (warnings before and at each deadline, breaches after the
lateness), escalates unaccepted ones, gives the assignee's
load back when a case ends (AssignmentReleased, also when the end came before the dispatch was
read), counts each case's latest conclusion for the outcome statistics, and dead-letters field
events whose case never got a dispatch.

Two clocks drive it, both read from the log:
- the partition's own watermark (its data, and the ticks its owner appends) decides deadlines,
  escalations and forgetting;
- the dispatch stage's progress, which every routing partition announces after its dispatches
  (ClockTicked ``routing/<n>``), decides orphans: a held field event becomes an Orphan only once
  every routing partition has passed its time, so an outage or a backfill, where dispatches come
  long after the field events, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from schemas.event import Event
from streams.domain.clock import PartitionClock, announcement
from streams.domain.district import District
from streams.domain.engine import META, Agenda, Changes, Emit, Frontier, Record, flush_order, sources_of
from streams.domain.sla import FIELD_TYPES, Case, Held, SlaTiming, advance, apply, orphans

CASE_TYPES = frozenset({"AlarmTriaged", "CaseDispatched", "CaseReassigned", *FIELD_TYPES})
DERIVED = frozenset({"AlarmTriaged", "CaseDispatched", "CaseReassigned", "ClockTicked"})
# Where each event the engine decides goes (CaseReassigned also tells the street's load: see _emits).
TOPIC_OF = {
    "SlaBreached": "sla-breaches",
    "SlaAtRisk": "sla-alerts",
    "SlaOverdue": "sla-alerts",
    "CaseReassigned": "case-events",
    "AssignmentReleased": "routing",
    "OutcomeCounted": "outcomes",
    "DeadLettered": "deadletter",
}


@dataclass
class CaseMeta:
    """The partition's clock, what the routing partitions have announced, and what it last announced itself."""

    clock: PartitionClock = field(default_factory=PartitionClock)
    dispatched: dict[int, datetime] = field(default_factory=dict)  # each routing partition's event time
    read: dict[int, datetime] = field(default_factory=dict)  # and how far it has read the alarms, in log time
    announced: datetime | None = None


@dataclass
class CasePartition:
    meta: CaseMeta
    cases: dict[str, Case]
    frontier: Frontier
    read: Frontier
    due: Agenda = field(default_factory=Agenda)  # decisions and forgetting, by event time
    # Each held event waits on two clocks, one after the other: until the dispatch stage passes its time
    # (``held``, keyed case⇥event at its occurred_at), then until the stage has read every alarm appended up to
    # the lateness after it (``held_read``, at its append time plus the lateness). Then it is an orphan.
    held: Agenda = field(default_factory=Agenda)
    held_read: Agenda = field(default_factory=Agenda)
    oldest: Agenda = field(default_factory=Agenda)  # each case with held events, at the oldest one's time
    changes: Changes = field(default_factory=Changes)


class CaseEngine:
    def __init__(self, district: District, timing: SlaTiming, routing_partitions: int, outcome_partitions: int) -> None:
        self.district, self.timing = district, timing
        self.leads = district.sla.lead_times
        self.routing_partitions, self.outcome_partitions = routing_partitions, outcome_partitions
        self.partitions: dict[int, CasePartition] = {}

    # ---- state ---------------------------------------------------------------------------------------------

    def load(self, partition: int, meta: CaseMeta | None, cases: Iterable[Case]) -> None:
        meta = meta or CaseMeta()
        state = CasePartition(
            meta,
            {c.case_id: c for c in cases},
            Frontier(self.routing_partitions, meta.dispatched),
            Frontier(self.routing_partitions, meta.read),
        )
        self.partitions[partition] = state
        for case in state.cases.values():
            self._index(state, case)

    def loaded(self, partition: int) -> bool:
        return partition in self.partitions

    def forget(self) -> None:
        """After a rebalance: reload each partition from the store before its next record."""
        self.partitions.clear()

    def flush(self, partition: int) -> list[tuple[str, Case | CaseMeta | None]]:
        state = self.partitions[partition]
        state.meta.dispatched = dict(state.frontier.known)
        state.meta.read = dict(state.read.known)
        return flush_order(state.cases.__getitem__, state.changes, state.meta)

    def clock(self, partition: int) -> PartitionClock:
        return self.partitions[partition].meta.clock

    # ---- records -------------------------------------------------------------------------------------------

    def on_record(self, record: Record) -> list[Emit]:
        state = self.partitions[record.partition]
        event = record.event
        if event.type in DERIVED and not record.own:
            return []  # another deployment's decision: this one makes its own
        out: list[Emit] = []
        lateness = self.timing.lateness
        meta = state.meta
        if event.type == "ClockTicked":
            tick_id = event.fields["tick_id"]
            source = sources_of(tick_id, "routing")
            if source is not None:
                state.frontier.announce(source, event.occurred_at)
                if event.fields.get("log_time") is not None:
                    state.read.announce(source, event.fields["log_time"])
            elif tick_id == f"tick/{record.partition}":
                meta.clock = meta.clock.on_tick(record.appended_at, lateness)
        elif event.type in CASE_TYPES:
            out += self._apply(state, record)
            meta.clock = meta.clock.on_data(event.occurred_at, record.appended_at, lateness)
        state.changes.put(META)
        out += self._decide(state)
        out += self._orphans(state)
        return out

    def announcements(self, partition: int) -> list[Emit]:
        """After a batch: how far this partition's outcome counts have progressed, to every outcomes partition.

        No OutcomeCounted will later come from here with an earlier time than the watermark or the oldest
        held field event, except for a field event more than the allowed lateness late."""
        state = self.partitions[partition]
        at = state.meta.clock.watermark
        if at is None:
            return []
        oldest = state.oldest.first()
        if oldest is not None:
            at = min(at, oldest)
        if state.meta.announced is not None and at <= state.meta.announced:
            return []
        state.meta.announced = at
        state.changes.put(META)
        return [
            Emit("outcomes", announcement(f"cases/{partition}", at), partition=target, after=True)
            for target in range(self.outcome_partitions)
        ]

    # ---- decisions -----------------------------------------------------------------------------------------

    def _apply(self, state: CasePartition, record: Record) -> list[Emit]:
        event = record.event
        case_id = event.fields["case_id"]
        case = state.cases.get(case_id) or Case(case_id)
        updated, decided = apply(case, event, Held(event, record.origin, record.key, record.value, record.appended_at))
        if updated is not case:
            self._save(state, updated)
        return _emits(decided)

    def _decide(self, state: CasePartition) -> list[Emit]:
        watermark = state.meta.clock.watermark
        out: list[Emit] = []
        if watermark is None:
            return out
        for case_id in state.due.pop_before(watermark):
            case = state.cases.get(case_id)
            if case is None:
                continue
            updated, decided = advance(case, watermark, self.timing, self.district)
            out += _emits(decided)
            if updated.expired(watermark, self.timing, self.leads):
                del state.cases[case_id]
                state.changes.delete(case_id)
            elif updated is not case:
                self._save(state, updated)
            else:
                self._index(state, updated)  # still due later (the retention), keep it indexed
        return out

    def _orphans(self, state: CasePartition) -> list[Emit]:
        dispatched, read = state.frontier.watermark, state.read.watermark
        out: list[Emit] = []
        if dispatched is None or read is None:
            return out  # until every routing partition has said how far it is, nothing is an orphan
        lateness = self.timing.lateness
        ready: dict[str, set[str]] = {}
        for key in state.held.pop_before(dispatched):
            case_id, event_id = key.split("\t", 1)
            h = _held(state.cases.get(case_id), event_id)
            if h is not None:
                state.held_read.set(key, h.appended_at + lateness)  # due at once if read has passed it already
        for key in state.held_read.pop_before(read):
            case_id, event_id = key.split("\t", 1)
            if _held(state.cases.get(case_id), event_id) is not None:
                ready.setdefault(case_id, set()).add(event_id)
        for case_id, event_ids in sorted(ready.items()):
            case = state.cases[case_id]
            updated, dead = orphans(case, event_ids, lateness)
            out += _emits(dead)
            if updated is not case:
                self._save(state, updated)
        return out

    def _save(self, state: CasePartition, case: Case) -> None:
        state.cases[case.case_id] = case
        state.changes.put(case.case_id)
        self._index(state, case)

    def _index(self, state: CasePartition, case: Case) -> None:
        state.due.set(case.case_id, case.next_due(self.timing, self.leads))
        state.oldest.set(case.case_id, case.oldest_held)
        dispatched = state.frontier.watermark
        for h in case.held:
            key = f"{case.case_id}\t{h.event.event_id}"
            if dispatched is not None and h.event.occurred_at < dispatched:
                state.held_read.set(key, h.appended_at + self.timing.lateness)
            else:
                state.held.set(key, h.event.occurred_at)


def _held(case: Case | None, event_id: str) -> Held | None:
    return None if case is None else next((h for h in case.held if h.event.event_id == event_id), None)


def _emits(events: list[Event]) -> list[Emit]:
    out = []
    for e in events:
        out.append(Emit(TOPIC_OF[e.type], e))
        if e.type == "CaseReassigned":  # the street's open-case load follows the case to its new holder
            out.append(Emit("routing", e, key=e.fields["street_code"]))
    return out
