"""One case-events partition's SLA engine: watermark, due index, cases. Pure; storage is injected.

The agent feeds it records in log order, sends what each step returns, then applies the step's
state change; the state is logged only once the outputs are acknowledged (streams.agents.staging),
so a crash may repeat an output but never lose one. Tests feed it dicts and a virtual clock.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from schemas.event import Event
from streams.domain.clock import ClockStore, PartitionClock
from streams.domain.district import District
from streams.domain.sla import Case, Held, SlaTiming, advance, apply, release_orphans

CASE_TYPES = frozenset(
    {
        "AlarmTriaged",
        "CaseDispatched",
        "CaseReassigned",
        "InstructionAccepted",
        "PartyContacted",
        "ResponderArrived",
        "MediationConcluded",
        "CaseClosed",
    }
)


class CaseStore(Protocol):
    """Where case state lives (a Faust table in the worker)."""

    def get(self, case_id: str) -> Case | None: ...

    def put(self, case: Case) -> None: ...

    def delete(self, case_id: str) -> None: ...

    def in_partition(self, partition: int) -> Iterable[Case]: ...


@dataclass(frozen=True)
class Step:
    """Events to publish, then the state change to make once they are published."""

    events: list[Event]
    commit: Callable[[], None]


@dataclass(frozen=True)
class Record:
    """A consumed record as the engine needs it: the event and where it came from."""

    event: Event
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    appended_at: datetime


class SlaEngine:
    def __init__(self, district: District, policy: SlaTiming, cases: CaseStore, clocks: ClockStore) -> None:
        self.district, self.policy, self.cases, self.clocks = district, policy, cases, clocks
        self._due: dict[int, list[tuple[datetime, str]]] = defaultdict(list)  # by event time
        self._holds: dict[int, list[tuple[datetime, str]]] = defaultdict(list)  # by log time
        self._indexed: set[int] = set()
        # The clock moves on every record but is stored on ticks only: a changelog write per
        # record would double the output. After a restart the records since the last stored
        # tick are consumed again and move it the same way.
        self._clocks: dict[int, PartitionClock] = {}

    def forget_index(self) -> None:
        """After a rebalance another worker may have changed these partitions: rebuild lazily."""
        self._due.clear()
        self._holds.clear()
        self._indexed.clear()
        self._clocks.clear()

    def clock(self, partition: int) -> PartitionClock:
        return self._clocks.get(partition) or self.clocks.get(partition)

    def on_record(self, record: Record) -> Iterator[Step]:
        p, event, lateness = record.partition, record.event, self.policy.lateness
        self._ensure_index(p)
        clock = self.clock(p)
        if event.type == "ClockTicked":
            clock = clock.on_tick(record.appended_at, lateness)
            self.clocks.put(p, clock)
        else:
            if event.type in CASE_TYPES and not self._beyond_retention(record, clock):
                yield self._apply(record)
            clock = clock.on_data(event.occurred_at, record.appended_at, lateness)
        self._clocks[p] = clock
        yield from self._release(p, record.appended_at)
        if clock.watermark is not None:
            yield from self._decide(p, clock.watermark)

    def _beyond_retention(self, record: Record, clock: PartitionClock) -> bool:
        """An event about a case we no longer hold, older than the retention horizon, is a re-delivery of a
        settled case's history (a new deployment re-publishing its derived events, say): opening a fresh case
        for it would decide deadlines long past against none of its field events."""
        if clock.watermark is None or record.event.occurred_at >= clock.watermark - self.policy.retention:
            return False
        return self.cases.get(record.event.fields["case_id"]) is None

    def _apply(self, record: Record) -> Step:
        case_id = record.event.fields["case_id"]
        case = self.cases.get(case_id) or Case(case_id, record.partition)
        held = Held(
            record.event, (record.topic, record.partition, record.offset), record.key, record.value, record.appended_at
        )
        updated, out = apply(case, record.event, held)
        if updated is case:
            return Step(out, lambda: None)  # a duplicate: nothing to store
        return Step(out, partial(self._save, updated))

    def _release(self, partition: int, log_time: datetime) -> Iterator[Step]:
        for case_id in _pop(self._holds[partition], log_time):
            case = self.cases.get(case_id)
            if case is not None and case.held:
                updated, out = release_orphans(case, log_time, self.policy)
                if updated is not case:
                    yield Step(out, partial(self._save, updated))
                else:
                    self._index(case)

    def _decide(self, partition: int, watermark: datetime) -> Iterator[Step]:
        for case_id in _pop(self._due[partition], watermark):
            case = self.cases.get(case_id)
            if case is None:
                continue
            updated, out = advance(case, watermark, self.policy, self.district)
            if updated.expired(watermark, self.policy):
                yield Step(out, partial(self.cases.delete, case_id))
            elif updated is not case:
                yield Step(out, partial(self._save, updated))

    def _save(self, case: Case) -> None:
        self.cases.put(case)
        self._index(case)

    def _index(self, case: Case) -> None:
        due = case.next_due(self.policy)
        if due is not None:
            heapq.heappush(self._due[case.partition], (due, case.case_id))
        if case.held:
            expiry = min(h.expires_at(self.policy) for h in case.held)
            heapq.heappush(self._holds[case.partition], (expiry, case.case_id))

    def _ensure_index(self, partition: int) -> None:
        if partition not in self._indexed:
            for case in self.cases.in_partition(partition):
                self._index(case)
            self._indexed.add(partition)


def _pop(heap: list[tuple[datetime, str]], until: datetime) -> list[str]:
    """Case ids due by ``until``, each once, in a stable order."""
    due = set()
    while heap and heap[0][0] <= until:
        due.add(heapq.heappop(heap)[1])
    return sorted(due)
