"""The case engine on a virtual clock: timelines, ticks, restarts, outages, backfills, orphans, releases,
permutations. No Kafka: records are fed in log order, and the state is logged to a dict after each record."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import Event
from streams.domain.case_engine import CaseEngine
from streams.domain.clock import announcement
from streams.domain.engine import META, Record
from streams.domain.sla import SlaTiming
from streams.reference_files import load_district

DISTRICT = load_district()
T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)  # 12:00 in Hezhuang: day shifts are on duty
POLICY = SlaTiming(lateness=timedelta(seconds=60), escalation_window=timedelta(seconds=60))
S = timedelta(seconds=1)
MS = timedelta(milliseconds=1)


class Sim:
    """One case-events partition fed in log order; after each record its state is logged to ``store``, as the
    agent does after each batch. A new Sim on the same store is a restarted worker."""

    def __init__(self, store: dict[str, Any] | None = None, policy: SlaTiming = POLICY) -> None:
        self.store: dict[str, Any] = {} if store is None else store
        self.engine = CaseEngine(DISTRICT, policy, routing_partitions=1, outcome_partitions=1)
        self.engine.load(0, self.store.get(META), [v for k, v in self.store.items() if k not in (META, "_offset")])
        self.out: list[Event] = []
        self.offset = self.store.get("_offset", 0)

    def feed(self, event: Event, appended_at: datetime | None = None, own: bool = True) -> None:
        appended = appended_at or event.occurred_at
        record = Record(event, "t.case-events", 0, self.offset, b"k", b"v", appended, own)
        # CaseReassigned goes to case-events and to the street's routing partition: count it once
        self.out += [
            e.event for e in self.engine.on_record(record) if e.topic != "routing" or e.event.type != "CaseReassigned"
        ]
        self.offset += 1
        for key, value in self.engine.flush(0):
            if value is None:
                self.store.pop(key, None)
            else:
                self.store[key] = value
        self.store["_offset"] = self.offset

    def tick(self, appended_at: datetime) -> None:
        self.feed(_tick("tick/0", appended_at), appended_at)

    def dispatched_up_to(self, at: datetime, appended_at: datetime | None = None, read: datetime | None = None) -> None:
        """The routing partition announces it has dispatched every alarm up to ``at``, and read every alarm
        appended up to ``read`` (by default, as far as the log has come)."""
        self.feed(announcement("routing/0", at, read or appended_at or at), appended_at or at)

    def run_to(self, at: datetime, step: timedelta = S) -> None:
        """Ticks every ``step`` up to ``at``, like a quiet live partition; dispatching keeps up with time."""
        last = self.engine.clock(0).last_append or T0
        t = last + step
        while t <= at:
            self.tick(t)
            watermark = self.engine.clock(0).watermark
            if watermark is not None:
                self.dispatched_up_to(watermark, t)
            t += step

    def breaches(self) -> dict[tuple[str, str], Any]:
        return {
            (e.fields["case_id"], e.fields["stage"]): e.fields["late_by_ms"]
            for e in self.out
            if e.type == "SlaBreached"
        }

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.out if e.type == kind]

    @property
    def cases(self) -> dict[str, Any]:
        return self.engine.partitions[0].cases


def _tick(tick_id: str, at: datetime) -> Event:
    fields = {"event_id": str(uuid.uuid4()), "occurred_at": at, "source": "t", "tick_id": tick_id, "partition": 0}
    return Event("ClockTicked", fields)


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
            "sla_rule": "default",
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


def test_a_stage_met_exactly_at_its_deadline_counts_even_when_it_arrives_exactly_the_lateness_late() -> None:
    sim = Sim()
    sim.feed(dispatched())
    deadline = T0 + 60 * S
    # another case's event moves event time to exactly deadline + lateness: the watermark equals the deadline
    sim.feed(field(ACCEPT, deadline + POLICY.lateness, case="OTHER"), deadline + POLICY.lateness)
    assert sim.engine.clock(0).watermark == deadline
    sim.feed(_field_event(ACCEPT, deadline), deadline + POLICY.lateness)  # at the deadline, exactly lateness late
    sim.run_to(T0 + timedelta(minutes=20))
    assert ("C1", "ACCEPT") not in sim.breaches()
    one_ms_later = Sim()
    one_ms_later.feed(dispatched())
    later = deadline + POLICY.lateness + MS
    one_ms_later.feed(field(ACCEPT, later, case="OTHER"), later)
    one_ms_later.feed(_field_event(ACCEPT, deadline), later)  # now 1 ms beyond the lateness
    one_ms_later.run_to(T0 + timedelta(minutes=20))
    assert ("C1", "ACCEPT") in one_ms_later.breaches()


def test_a_missing_acceptance_is_decided_by_ticks_alone_after_the_lateness() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.run_to(T0 + 120 * S)
    assert sim.breaches() == {}  # the watermark is at the deadline, not past it
    sim.run_to(T0 + 121 * S)
    assert sim.breaches() == {("C1", "ACCEPT"): None}
    breach = sim.of("SlaBreached")[0].fields
    assert breach["occurred_at"] == T0 + 60 * S + MS and breach["sla_rule"] == "default"
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


def test_events_before_their_dispatch_wait_for_it_however_long_the_log_takes() -> None:
    sim = Sim()
    sim.feed(_field_event(ACCEPT, T0 + 10 * S), T0 + 11 * S)
    sim.feed(_field_event(ARRIVE, T0 + 100 * S), T0 + 101 * S)
    sim.tick(T0 + 3600 * S)  # an hour of log time passes: the dispatch stage has not said anything yet
    sim.feed(dispatched(), T0 + 3601 * S)
    sim.run_to(T0 + 5000 * S)
    assert sim.breaches() == {} and sim.of("DeadLettered") == []


def test_an_orphan_is_dead_lettered_once_the_dispatch_stage_has_passed_it_by_both_clocks() -> None:
    def held(at: datetime, read: datetime, tick: datetime | None = None) -> list[Event]:
        sim = Sim()
        sim.feed(field(ACCEPT, T0, case="NOPE"), T0)
        sim.dispatched_up_to(at, T0 + 3600 * S, read=read)
        if tick is not None:
            sim.tick(tick)
        return sim.of("DeadLettered")

    assert held(T0 - MS, T0 + 3600 * S, tick=T0 + 7200 * S) == []  # log time alone decides nothing
    assert held(T0, T0 + 3600 * S) == []  # at its time, an alarm at the same moment may still be dispatched
    assert held(T0 + MS, T0 + 60 * S) == []  # an alarm appended up to the lateness after it may still come
    [letter] = held(T0 + MS, T0 + 60 * S + MS)
    assert letter.fields["error_class"] == "Orphan" and "NOPE" in letter.fields["reason"]
    assert letter.fields["origin"] == "t.case-events/0/0" and letter.fields["payload"] == b"v"


def test_a_field_clock_an_hour_behind_does_not_orphan_events_whose_alarm_was_appended_first() -> None:
    """The field app stamps its events an hour early, so each one is older than its alarm; in a backfill the
    dispatch comes after it. The alarm was appended before the event: the event waits for the dispatch."""
    sim = Sim()
    appended = T0 + 30 * S
    sim.feed(field(ACCEPT, T0 + 30 * S - timedelta(hours=1)), appended)  # stamped an hour early
    sim.dispatched_up_to(T0 + 20 * S, appended + S, read=T0)  # the stage passed its stamp, not its alarm
    assert sim.of("DeadLettered") == []
    sim.feed(dispatched(), appended + 2 * S)
    sim.dispatched_up_to(T0 + 40 * S, appended + 3 * S, read=appended + 2 * S)
    sim.run_to(T0 + timedelta(minutes=20))
    assert sim.of("DeadLettered") == [] and ("C1", "ACCEPT") not in sim.breaches()


def test_field_events_of_police_and_review_cases_are_accepted_untracked_in_any_order() -> None:
    review = Event(
        "AlarmTriaged",
        {"event_id": "t1", "occurred_at": T0, "source": "w", "case_id": "R1", "disposition": "REVIEW"},
    )
    for order in ("triage first", "field events first"):
        sim = Sim()
        events = [field(ACCEPT, T0 + 20 * S, case="R1"), field(CLOSE, T0 + 90 * S, case="R1", reported_to=[])]
        if order == "triage first":
            events.insert(0, review)
        else:
            events.append(review)
        for e in events:
            sim.feed(e, e.occurred_at + 5 * S)
        sim.run_to(T0 + timedelta(hours=2), step=30 * S)
        assert sim.of("DeadLettered") == [] and sim.breaches() == {} and sim.of("AssignmentReleased") == [], order
        assert sim.cases["R1"].tracked is False and sim.cases["R1"].held == ()


def test_an_outage_delays_the_dispatch_past_the_field_events_and_changes_nothing() -> None:
    """The worker is down for 15 minutes: the dispatch lands after the case's field events, and after field
    events of later cases too; the breaches and releases are those of a live run."""
    timeline = [(ACCEPT, 90), (CONTACT, 150), (ARRIVE, 700), (CLOSE, 900)]
    live = Sim()
    live.feed(dispatched())
    for kind, seconds in timeline:
        live.run_to(T0 + seconds * S)
        live.feed(_field_event(kind, T0 + seconds * S))
    live.run_to(T0 + timedelta(minutes=40))
    outage = Sim()
    for kind, seconds in timeline:  # appended while the worker is down: nobody ticks, nobody dispatches
        outage.feed(_field_event(kind, T0 + seconds * S))
    back = T0 + timedelta(minutes=16)
    outage.feed(dispatched(), back)
    outage.run_to(T0 + timedelta(minutes=40))
    assert live.breaches() == outage.breaches() == {("C1", "ACCEPT"): 30_000, ("C1", "ARRIVE"): None}
    assert [e.fields for e in live.of("AssignmentReleased")] == [e.fields for e in outage.of("AssignmentReleased")]
    assert outage.of("DeadLettered") == []


def test_a_close_before_the_dispatch_is_read_releases_the_assignee_when_it_comes() -> None:
    sim = Sim()
    sim.feed(field(CLOSE, T0 + 30 * S, reported_to=[]))
    sim.feed(dispatched(), T0 + 40 * S)
    sim.run_to(T0 + 200 * S)  # decided once the watermark passes the close, with the escalations in time order
    [release] = sim.of("AssignmentReleased")
    assert release.fields == {
        **release.fields,
        "case_id": "C1",
        "street_code": "330114005",
        "assignee_id": "GW-10",
        "occurred_at": T0 + 30 * S,
    }
    sim.feed(field(CONCLUDE, T0 + 60 * S, outcome="RESOLVED", compensation=None, summary=""))
    sim.run_to(T0 + 300 * S)
    assert len(sim.of("AssignmentReleased")) == 1  # once per case
    assert sim.of("CaseReassigned") == []  # ended before its acceptance window did


def test_an_escalated_case_releases_its_current_holder_and_tells_the_street() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.run_to(T0 + 150 * S)
    [moved] = sim.of("CaseReassigned")
    sim.feed(field(CLOSE, T0 + 100 * S, reported_to=[]), T0 + 150 * S)  # before the next window ends at 120 s
    sim.run_to(T0 + 300 * S)
    [release] = sim.of("AssignmentReleased")
    assert release.fields["assignee_id"] == moved.fields["to_assignee"] != "GW-10"


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


def test_a_restart_continues_from_the_logged_state_without_repeating_a_breach() -> None:
    store: dict[str, Any] = {}
    first = Sim(store)
    first.feed(dispatched())
    first.run_to(T0 + 150 * S)
    assert list(first.breaches()) == [("C1", "ACCEPT")]
    second = Sim(store)  # a new process: state and clock come from the log
    assert second.engine.clock(0) == first.engine.clock(0)  # the clock is logged with every batch
    second.run_to(T0 + 20 * 60 * S)
    assert list(second.breaches()) == [("C1", "CONTACT"), ("C1", "ARRIVE")]


def test_a_restart_between_ticks_never_moves_the_watermark_back() -> None:
    store: dict[str, Any] = {}
    first = Sim(store)
    first.feed(dispatched())
    first.tick(T0 + 10 * S)
    first.feed(field(ACCEPT, T0 + 400 * S, case="LATER"), T0 + 400 * S)  # data moves the clock, no tick follows
    before = first.engine.clock(0).watermark
    second = Sim(store)
    assert second.engine.clock(0).watermark == before == T0 + 340 * S


def test_an_upstream_clock_running_ahead_does_not_advance_time() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.feed(field(ACCEPT, T0 + timedelta(hours=2), case="OTHER"), T0 + 5 * S)  # clock 2 h ahead
    assert sim.breaches() == {}  # had time jumped to the event's clock, C1's deadlines would have passed
    sim.run_to(T0 + 100 * S)
    assert sim.breaches() == {}


def _cases(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(n):
        at = T0 + timedelta(minutes=7 * i)
        case = f"B{i}"
        events.append(dispatched(case, at))
        t = at
        for kind in (ACCEPT, CONTACT, ARRIVE, CLOSE):
            t += timedelta(seconds=rng.randint(10, 200))
            if rng.random() < 0.85:
                e = _field_event(kind, t)
                events.append(Event(e.type, {**e.fields, "case_id": case, "event_id": f"{case}{kind}"}))
    return sorted(events, key=lambda e: e.occurred_at)


def test_live_and_a_backfill_published_before_the_dispatches_give_the_same_breaches() -> None:
    events = _cases(20, seed=4)
    live = Sim()
    for e in events:
        live.run_to(e.occurred_at)
        live.feed(e)
    live.run_to(events[-1].occurred_at + timedelta(minutes=30))
    # a day published before the worker starts: every field event is in the log before any dispatch
    backfill = Sim()
    today = T0 + timedelta(days=30)
    field_events = [e for e in events if e.type != "CaseDispatched"]
    for i, e in enumerate(field_events):
        backfill.feed(e, today + i * 5 * MS)
    for i, e in enumerate(e for e in events if e.type == "CaseDispatched"):
        backfill.feed(e, today + S + i * 5 * MS)
        backfill.dispatched_up_to(e.occurred_at, today + S + i * 5 * MS)
    backfill.run_to(today + timedelta(minutes=30))
    assert live.breaches() == backfill.breaches() and live.breaches()
    assert backfill.of("DeadLettered") == []
    assert {e.event_id for e in live.of("AssignmentReleased")} == {
        e.event_id for e in backfill.of("AssignmentReleased")
    }


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
            sim.feed(e, T0 + n * MS)  # one quick backfill: event time decides
        sim.run_to(T0 + timedelta(hours=2), step=30 * S)
        pairs = [(b.fields["case_id"], b.fields["stage"]) for b in sim.of("SlaBreached")]
        assert len(pairs) == len(set(pairs))  # at most one breach per (case, stage)
        return {(b.fields["case_id"], b.fields["stage"], b.fields["deadline"]) for b in sim.of("SlaBreached")}

    assert run(ordered) == run(shuffled)


def test_a_case_is_forgotten_after_the_retention_and_a_later_field_event_is_an_orphan_not_dropped() -> None:
    sim = Sim(policy=SlaTiming(lateness=60 * S, retention=timedelta(hours=1)))
    sim.feed(dispatched())
    sim.feed(_field_event(ARRIVE, T0 + 30 * S))
    sim.feed(field(CLOSE, T0 + 60 * S, reported_to=[]))
    sim.run_to(T0 + timedelta(hours=2), step=30 * S)
    assert "C1" not in sim.cases and "C1" not in sim.store  # forgotten, and the forgetting is logged
    sim.feed(field(CONCLUDE, T0 + 50 * S, outcome="RESOLVED", compensation=None, summary=""))  # 2 h late
    sim.run_to(T0 + timedelta(hours=2, minutes=5), step=30 * S)
    [letter] = sim.of("DeadLettered")
    assert letter.fields["error_class"] == "Orphan" and sim.breaches() == {}


def test_another_deployments_decisions_are_not_taken_for_this_ones() -> None:
    sim = Sim()
    sim.feed(dispatched(), own=False)  # a dispatch a previous deployment wrote to the shared topic
    sim.run_to(T0 + timedelta(minutes=20))
    assert sim.breaches() == {} and "C1" not in sim.cases


def test_state_stays_bounded_over_many_closed_cases() -> None:
    sim = Sim(policy=SlaTiming(lateness=60 * S, retention=timedelta(hours=2)))
    gap = timedelta(minutes=3)
    for i in range(600):  # 30 hours of cases, each closed within 20 minutes
        at = T0 + i * gap
        case = f"K{i}"
        sim.feed(dispatched(case, at))
        for kind, after in ((ACCEPT, 20), (ARRIVE, 300), (CLOSE, 1200)):
            e = _field_event(kind, at + after * S)
            sim.feed(Event(e.type, {**e.fields, "case_id": case, "event_id": f"{case}{kind}"}), at + MS)
        sim.tick(at + 2 * S)
    held = len(sim.cases)
    assert held <= (timedelta(hours=2) + timedelta(minutes=30)) / gap + 5, held
    agenda = sim.engine.partitions[0].due
    assert len(agenda) <= held  # one live entry per case, however often each was saved
    assert agenda.stored <= 2 * held + agenda.SLACK  # and the heap behind it holds no trail of old ones
