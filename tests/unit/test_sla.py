"""The SLA engine on a virtual clock: timelines, ticks, restarts, backfills, permutations. No Kafka."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import Event
from streams.domain.memory import MemoryCases, MemoryClocks
from streams.domain.sla import SlaTiming
from streams.domain.sla_engine import Record, SlaEngine
from streams.reference_files import load_district

DISTRICT = load_district()
T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)  # 12:00 in Hezhuang: day shifts are on duty
POLICY = SlaTiming(
    lateness=timedelta(seconds=60), orphan_hold=timedelta(minutes=10), escalation_window=timedelta(seconds=60)
)
S = timedelta(seconds=1)


Cases, Clocks = MemoryCases, MemoryClocks


class Sim:
    """One partition fed in log order; outputs are applied at once, as after a broker ack."""

    def __init__(self, cases: Cases | None = None, clocks: Clocks | None = None, policy: SlaTiming = POLICY) -> None:
        self.cases, self.clocks = cases or Cases(), clocks or Clocks()
        self.engine = SlaEngine(DISTRICT, policy, self.cases, self.clocks)
        self.out: list[Event] = []
        self.offset = 0

    def feed(self, event: Event, appended_at: datetime | None = None) -> None:
        appended = appended_at or event.occurred_at
        for step in self.engine.on_record(Record(event, "t.case-events", 0, self.offset, b"k", b"v", appended)):
            self.out += step.events
            step.commit()
        self.offset += 1

    def tick(self, appended_at: datetime) -> None:
        self.feed(
            Event(
                "ClockTicked",
                {
                    "event_id": str(uuid.uuid4()),
                    "occurred_at": appended_at,
                    "source": "t",
                    "tick_id": "tick/0",
                    "partition": 0,
                },
            ),
            appended_at,
        )

    def run_to(self, at: datetime, step: timedelta = S) -> None:
        """Ticks every ``step`` up to ``at``, like a quiet live partition."""
        last = self.engine.clock(0).last_append or T0
        t = last + step
        while t <= at:
            self.tick(t)
            t += step

    def breaches(self) -> dict[tuple[str, str], Any]:
        return {
            (e.fields["case_id"], e.fields["stage"]): e.fields["late_by_ms"]
            for e in self.out
            if e.type == "SlaBreached"
        }

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.out if e.type == kind]


def dispatched(
    case: str = "C1",
    at: datetime = T0,
    level: str = "GRID",
    assignee: str | None = "GW-10",
    grid: str | None = "HZ-V05",
) -> Event:
    return Event(
        "CaseDispatched",
        {
            "event_id": f"{case}-dispatch",
            "occurred_at": at,
            "source": "alarmflow.worker",
            "case_id": case,
            "alarm_id": case,
            "category": "noise.renovation",
            "priority": 3,
            "street_code": "330114005",
            "grid_code": grid,
            "team": "GRID_WORKER",
            "level": level,
            "assignee_id": assignee,
            "accept_by": at + 60 * S,
            "contact_by": at + 180 * S,
            "arrive_by": at + 480 * S,
            "rule": "dispatch.grid_member",
            "place": None,
        },
    )


def field(kind: str, at: datetime, case: str = "C1", event_id: str | None = None, **extra: Any) -> Event:
    fields: dict[str, Any] = {
        "event_id": event_id or f"{case}-{kind}-{at.isoformat()}",
        "occurred_at": at,
        "source": "gridapp",
        "case_id": case,
    }
    if kind != "CaseClosed":
        fields["worker_id"] = "GW-10"
    fields.update(extra)
    return Event(kind, fields)


ACCEPT, CONTACT, ARRIVE = "InstructionAccepted", "PartyContacted", "ResponderArrived"
CONCLUDE, CLOSE = "MediationConcluded", "CaseClosed"


# (field events as (type, seconds after dispatch), expected {stage: late_by_ms or None})
TIMELINES: list[tuple[str, list[tuple[str, float]], dict[str, int | None]]] = [
    ("all on time", [(ACCEPT, 30), (CONTACT, 100), (ARRIVE, 400)], {}),
    ("accepted late", [(ACCEPT, 90), (CONTACT, 100), (ARRIVE, 400)], {"ACCEPT": 30_000}),
    ("everything missing", [], {"ACCEPT": None, "CONTACT": None, "ARRIVE": None}),
    ("arrival implies contact and acceptance", [(ARRIVE, 50)], {}),
    ("contact implies acceptance", [(CONTACT, 55), (ARRIVE, 300)], {}),
    ("met exactly at the deadline is on time", [(ACCEPT, 60), (CONTACT, 180), (ARRIVE, 480)], {}),
    ("1 ms late is late", [(ACCEPT, 60.001), (CONTACT, 100), (ARRIVE, 400)], {"ACCEPT": 1}),
    ("resolved by phone: conclusion cancels arrival", [(ACCEPT, 20), (CONTACT, 60), (CONCLUDE, 200)], {}),
    ("cancelled after a deadline: that stage stays breached", [(ACCEPT, 20), (CONCLUDE, 200)], {"CONTACT": None}),
    ("closed before anything", [(CLOSE, 30)], {}),
    ("arrival late, contact on time", [(ACCEPT, 20), (CONTACT, 170), (ARRIVE, 500)], {"ARRIVE": 20_000}),
]


def _field_event(kind: str, at: datetime) -> Event:
    extra: dict[str, Any] = {}
    if kind == CONTACT:
        extra["method"] = "PHONE"
    if kind == CONCLUDE:
        extra.update(outcome="RESOLVED", compensation=None, summary="")
    if kind == ARRIVE:
        extra.update(lat=None, lon=None)
    if kind == CLOSE:
        extra["reported_to"] = []
    return field(kind, at, **extra)


@pytest.mark.parametrize(("name", "timeline", "expected"), TIMELINES, ids=[t[0] for t in TIMELINES])
def test_timelines_in_live_order(name: str, timeline: list[tuple[str, float]], expected: dict[str, Any]) -> None:
    sim = Sim()
    sim.feed(dispatched())
    for kind, seconds in sorted(timeline, key=lambda x: x[1]):
        at = T0 + timedelta(seconds=seconds)
        sim.run_to(at)
        sim.feed(_field_event(kind, at))
    sim.run_to(T0 + timedelta(minutes=20))
    assert {stage: late for (_, stage), late in sim.breaches().items()} == expected
    ids = [e.event_id for e in sim.of("SlaBreached")]
    assert len(ids) == len(set(ids))


def test_a_missing_acceptance_is_decided_by_ticks_alone_after_the_lateness() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.run_to(T0 + 119 * S)
    assert sim.breaches() == {}  # deadline +60 s, plus 60 s allowed lateness
    sim.run_to(T0 + 121 * S)
    assert sim.breaches() == {("C1", "ACCEPT"): None}
    breach = sim.of("SlaBreached")[0].fields
    assert breach["occurred_at"] == T0 + 60 * S + timedelta(milliseconds=1)
    assert breach["assignee_id"] == "GW-10" and breach["street_code"] == "330114005"


def test_an_acceptance_after_the_breach_leaves_it_a_breach() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.run_to(T0 + 130 * S)
    sim.feed(_field_event(ACCEPT, T0 + 130 * S))
    sim.run_to(T0 + 20 * 60 * S)
    assert sim.breaches() == {("C1", "ACCEPT"): None, ("C1", "CONTACT"): None, ("C1", "ARRIVE"): None}


def test_duplicates_change_nothing() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.feed(dispatched())
    accept = field(ACCEPT, T0 + 90 * S, event_id="dup")
    sim.feed(accept)
    sim.feed(accept)
    sim.run_to(T0 + 20 * 60 * S)
    assert list(sim.breaches()) == [("C1", "ACCEPT"), ("C1", "CONTACT"), ("C1", "ARRIVE")]
    assert len(sim.of("SlaBreached")) == 3


def test_events_before_their_dispatch_are_held_then_applied() -> None:
    sim = Sim()
    sim.feed(_field_event(ACCEPT, T0 + 10 * S), T0 + 11 * S)
    sim.feed(_field_event(ARRIVE, T0 + 100 * S), T0 + 101 * S)
    sim.feed(dispatched(), T0 + 102 * S)  # a replay: the router's dispatch lands after the field events
    sim.run_to(T0 + 20 * 60 * S)
    assert sim.breaches() == {} and sim.of("DeadLettered") == []


def test_an_orphan_is_dead_lettered_after_the_hold_in_log_time() -> None:
    sim = Sim()
    sim.feed(field(ACCEPT, T0, case="NOPE"), T0)
    sim.run_to(T0 + 599 * S)
    assert sim.of("DeadLettered") == []
    sim.run_to(T0 + 601 * S)
    [letter] = sim.of("DeadLettered")
    assert letter.fields["error_class"] == "Orphan" and "NOPE" in letter.fields["reason"]
    assert letter.fields["origin"] == "t.case-events/0/0" and letter.fields["payload"] == b"v"


def test_a_backfill_holds_its_orphans_while_log_time_stands_still() -> None:
    sim = Sim()
    today = T0 + timedelta(days=30)
    sim.feed(field(ACCEPT, T0, case="C1"), today)
    for i in range(1, 50):  # a month of other cases' events, appended within a second
        sim.feed(field(ACCEPT, T0 + timedelta(hours=i), case=f"X{i}"), today + i * timedelta(milliseconds=10))
    assert sim.of("DeadLettered") == []
    sim.feed(dispatched(), today + S)
    sim.run_to(today + 20 * S)
    assert ("C1", "ACCEPT") not in sim.breaches()


def test_escalation_moves_up_one_level_per_window_and_acceptance_stops_it() -> None:
    sim = Sim()
    sim.feed(dispatched(level="STREET_POOL", assignee="MD-01", grid=None))
    sim.run_to(T0 + 10 * 60 * S)
    moves = [(e.fields["level"], e.fields["to_assignee"], e.fields["step"]) for e in sim.of("CaseReassigned")]
    assert moves == [("COMMAND_ROOM", None, 1)]
    sim2 = Sim()
    sim2.feed(dispatched())
    sim2.run_to(T0 + 10 * 60 * S)
    levels = [e.fields["level"] for e in sim2.of("CaseReassigned")]
    assert levels[-1] == "COMMAND_ROOM" and levels[0] in ("GRID", "STREET_POOL")
    assert [e.fields["step"] for e in sim2.of("CaseReassigned")] == list(range(1, len(levels) + 1))
    sim3 = Sim()
    sim3.feed(dispatched())
    sim3.feed(_field_event(ACCEPT, T0 + 100 * S))  # another worker accepts after the first window
    sim3.run_to(T0 + 10 * 60 * S)
    assert len(sim3.of("CaseReassigned")) == 1
    assert sim3.breaches() == {("C1", "ACCEPT"): 40_000, ("C1", "CONTACT"): None, ("C1", "ARRIVE"): None}


def test_a_restart_continues_from_stored_state_without_repeating_a_breach() -> None:
    cases, clocks = Cases(), Clocks()
    first = Sim(cases, clocks)
    first.feed(dispatched())
    first.run_to(T0 + 150 * S)
    assert list(first.breaches()) == [("C1", "ACCEPT")]
    second = Sim(cases, clocks)  # a new process: the in-memory index and clock are rebuilt
    second.offset = first.offset
    second.run_to(T0 + 20 * 60 * S)
    assert list(second.breaches()) == [("C1", "CONTACT"), ("C1", "ARRIVE")]


def test_an_upstream_clock_running_ahead_does_not_advance_time() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.feed(field(ACCEPT, T0 + timedelta(hours=2), case="OTHER"), T0 + 5 * S)  # clock 2 h ahead
    assert sim.breaches() == {}  # had time jumped to the event's clock, C1's deadlines would have passed
    sim.run_to(T0 + 100 * S)
    assert sim.breaches() == {}


def test_live_and_backfill_give_the_same_breaches() -> None:
    rng = random.Random(4)
    events: list[Event] = []
    for i in range(20):
        at = T0 + timedelta(minutes=7 * i)
        case = f"B{i}"
        events.append(dispatched(case, at))
        t = at
        for kind in (ACCEPT, CONTACT, ARRIVE, CLOSE):
            t += timedelta(seconds=rng.randint(10, 200))
            if rng.random() < 0.85:
                e = _field_event(kind, t)
                events.append(Event(e.type, {**e.fields, "case_id": case, "event_id": f"{case}{kind}"}))
    events.sort(key=lambda e: e.occurred_at)
    live = Sim()
    for e in events:
        live.run_to(e.occurred_at)
        live.feed(e)
    live.run_to(events[-1].occurred_at + timedelta(minutes=30))
    backfill = Sim()
    today = T0 + timedelta(days=30)
    for i, e in enumerate(events):
        backfill.feed(e, today + i * timedelta(milliseconds=5))
    backfill.run_to(today + timedelta(minutes=30))
    assert live.breaches() == backfill.breaches() and live.breaches()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), swaps=st.lists(st.integers(0, 40), max_size=20))
def test_permuting_events_within_the_lateness_never_changes_the_breaches(seed: int, swaps: list[int]) -> None:
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(6):
        at = T0 + timedelta(seconds=rng.randint(0, 600))
        case = f"P{i}"
        events.append(dispatched(case, at))
        for kind in (ACCEPT, CONTACT, ARRIVE, CONCLUDE):
            if rng.random() < 0.8:
                e = _field_event(kind, at + timedelta(seconds=rng.randint(5, 600)))
                events.append(Event(e.type, {**e.fields, "case_id": case, "event_id": f"{case}{kind}"}))
    ordered = sorted(events, key=lambda e: e.occurred_at)
    shuffled = list(ordered)
    for i in swaps:  # swap neighbours that are less than the lateness apart
        if i + 1 < len(shuffled) and abs(shuffled[i].occurred_at - shuffled[i + 1].occurred_at) < POLICY.lateness:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]

    def run(order: list[Event]) -> set[tuple[str, str, datetime]]:
        sim = Sim()
        for n, e in enumerate(order):
            sim.feed(e, T0 + n * timedelta(milliseconds=1))  # one quick backfill: event time decides
        sim.run_to(T0 + timedelta(hours=2), step=30 * S)
        pairs = [(b.fields["case_id"], b.fields["stage"]) for b in sim.of("SlaBreached")]
        assert len(pairs) == len(set(pairs))  # at most one breach per (case, stage)
        return {(b.fields["case_id"], b.fields["stage"], b.fields["deadline"]) for b in sim.of("SlaBreached")}

    assert run(ordered) == run(shuffled)


def test_a_settled_case_forgotten_after_retention_is_not_reopened_by_a_redelivery() -> None:
    sim = Sim(policy=SlaTiming(lateness=60 * S, retention=timedelta(hours=1)))
    sim.feed(dispatched())
    sim.feed(_field_event(ARRIVE, T0 + 30 * S))
    sim.feed(field(ACCEPT, T0 + timedelta(hours=3), case="LATER"))  # time moves on: C1 is forgotten
    assert sim.cases.get("C1") is None
    sim.feed(dispatched())  # a new deployment re-publishes its derived history
    sim.run_to(T0 + timedelta(hours=3, minutes=20), step=10 * S)
    assert sim.breaches() == {} and sim.cases.get("C1") is None
