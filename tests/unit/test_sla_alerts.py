"""Warnings before the breach (SlaAtRisk) and at the deadline (SlaOverdue), on a virtual clock: when each comes,
what stops it, their order with the breach, and that the log decides them (replays, restarts, duplicates).
No Kafka: records are fed in log order; the state is logged after each record through the changelog encoding."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.model import Decisions
from schemas.codec import Codec
from schemas.event import Event
from streams.agents import state
from streams.domain.case_engine import CaseEngine, CaseMeta
from streams.domain.clock import PartitionClock
from streams.domain.district import District
from streams.domain.engine import META, Record
from streams.domain.sla import Case, SlaTiming
from tests.unit.test_sla import (
    ACCEPT,
    ARRIVE,
    CLOSE,
    CONCLUDE,
    CONTACT,
    DISTRICT,
    MS,
    POLICY,
    T0,
    S,
    Sim,
    _cases,
    _field_event,
    _tick,
    dispatched,
    field,
)

CODEC = Codec()
STAGE_TYPES = {ACCEPT: 0, CONTACT: 1, ARRIVE: 2}
STAGES = ("ACCEPT", "CONTACT", "ARRIVE")
KINDS = ("SlaAtRisk", "SlaOverdue", "SlaBreached")
LEADS = (20 * S, 60 * S, 120 * S)  # the shipped policy's (issue 11's)


def alerts(sim: Sim) -> list[tuple[str, str, str]]:
    """(case, stage, kind) of every warning and breach, in the order published."""
    return [(e.fields["case_id"], e.fields["stage"], e.type) for e in sim.out if e.type in KINDS]


def of_stage(sim: Sim, stage: str, case: str = "C1") -> list[str]:
    return [kind for c, s, kind in alerts(sim) if c == case and s == stage]


def test_the_shipped_leads_are_what_the_engine_warns_by() -> None:
    assert DISTRICT.sla.lead_times == LEADS


def test_an_untouched_stage_is_at_risk_then_overdue_then_breached_each_at_its_own_tick() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.run_to(T0 + 40 * S)  # the clock is at deadline - lead, not past it
    assert of_stage(sim, "ACCEPT") == []
    sim.run_to(T0 + 41 * S)
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk"]
    [risk] = sim.of("SlaAtRisk")
    assert risk.fields == {
        **risk.fields,
        "occurred_at": T0 + 40 * S + MS,
        "deadline": T0 + 60 * S,
        "lead_ms": 20_000,
        "assignee_id": "GW-10",
        "street_code": "330114005",
        "team": "GRID_WORKER",
        "sla_rule": "default",
    }
    sim.run_to(T0 + 60 * S)
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk"]
    sim.run_to(T0 + 61 * S)  # the clock without the lateness passes the deadline: overdue, not yet breached
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk", "SlaOverdue"]
    [overdue] = sim.of("SlaOverdue")
    assert overdue.fields["occurred_at"] == T0 + 60 * S + MS and "lead_ms" not in overdue.fields
    sim.run_to(T0 + 120 * S)
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk", "SlaOverdue"]
    sim.run_to(T0 + 121 * S)  # the watermark (the clock less 60 s) passes the deadline: final
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk", "SlaOverdue", "SlaBreached"]
    sim.run_to(T0 + 20 * 60 * S)
    for stage in STAGES:
        assert of_stage(sim, stage) == ["SlaAtRisk", "SlaOverdue", "SlaBreached"], stage
    assert [e.fields["occurred_at"] - e.fields["deadline"] for e in sim.of("SlaAtRisk")] == [
        -lead + MS for lead in LEADS
    ]


def test_overdue_then_met_within_the_lateness_gives_no_breach() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.run_to(T0 + 75 * S)
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk", "SlaOverdue"]
    sim.feed(_field_event(ACCEPT, T0 + 59 * S), T0 + 75 * S + MS)  # accepted in time, read 16 s late
    for kind, seconds in ((CONTACT, 100), (ARRIVE, 300)):
        sim.run_to(T0 + seconds * S)
        sim.feed(_field_event(kind, T0 + seconds * S))
    sim.run_to(T0 + 20 * 60 * S)
    assert alerts(sim) == [("C1", "ACCEPT", "SlaAtRisk"), ("C1", "ACCEPT", "SlaOverdue")]


# (field events as (type, seconds after dispatch, seconds late), the warnings and breaches expected)
TIMELINES: list[tuple[str, list[tuple[str, float, float]], dict[str, list[str]]]] = [
    ("met before the lead: nothing", [(ACCEPT, 30, 0), (CONTACT, 100, 0), (ARRIVE, 300, 0)], {}),
    (
        "met exactly at deadline - lead: nothing",
        [(ACCEPT, 40, 0), (CONTACT, 120, 0), (ARRIVE, 360, 0)],
        {},
    ),
    (
        "met between the lead and the deadline: at risk only",
        [(ACCEPT, 50, 0), (CONTACT, 170, 0), (ARRIVE, 470, 0)],
        {s: ["SlaAtRisk"] for s in STAGES},
    ),
    (
        "met exactly at the deadline: at risk only",
        [(ACCEPT, 60, 0), (CONTACT, 100, 0), (ARRIVE, 300, 0)],
        {"ACCEPT": ["SlaAtRisk"]},
    ),
    (
        "met late: all three",
        [(ACCEPT, 90, 0), (CONTACT, 100, 0), (ARRIVE, 300, 0)],
        {"ACCEPT": list(KINDS)},
    ),
    ("arrival meets the earlier stages", [(ARRIVE, 30, 0)], {}),
    ("closed before anything: nothing", [(CLOSE, 30, 0)], {}),
    (
        "concluded by phone after contact: arrival cancelled, no warning",
        [(ACCEPT, 20, 0), (CONTACT, 60, 0), (CONCLUDE, 200, 0)],
        {},
    ),
    (
        "accepted in time but read after the lead: at risk stays, no overdue",
        [(ACCEPT, 39, 10), (CONTACT, 100, 0), (ARRIVE, 300, 0)],
        {"ACCEPT": ["SlaAtRisk"]},
    ),
    (
        "accepted in time but read past the deadline, within the lateness: both warnings, no breach",
        [(ACCEPT, 55, 30), (CONTACT, 100, 0), (ARRIVE, 300, 0)],
        {"ACCEPT": ["SlaAtRisk", "SlaOverdue"]},
    ),
    (
        "accepted in time but read beyond the lateness: a breach",
        [(ACCEPT, 55, 70), (CONTACT, 110, 0), (ARRIVE, 300, 0)],
        {"ACCEPT": list(KINDS)},
    ),
]


def _feed_timeline(sim: Sim, timeline: list[tuple[str, float, float]]) -> None:
    for kind, seconds, late in sorted(timeline, key=lambda x: x[1] + x[2]):
        at = T0 + timedelta(seconds=seconds)
        read = at + timedelta(seconds=late)
        sim.run_to(read)
        sim.feed(_field_event(kind, at), read + MS)
    sim.run_to(T0 + 20 * 60 * S)


@pytest.mark.parametrize(("name", "timeline", "expected"), TIMELINES, ids=[t[0] for t in TIMELINES])
def test_what_each_timeline_warns(name: str, timeline: list[tuple[str, float, float]], expected: Any) -> None:
    sim = Sim()
    sim.feed(dispatched())
    _feed_timeline(sim, timeline)
    assert {s: of_stage(sim, s) for s in STAGES if of_stage(sim, s)} == expected


def test_with_no_lateness_the_overdue_comes_just_before_its_breach() -> None:
    sim = Sim(policy=SlaTiming(lateness=timedelta(0)))
    sim.feed(dispatched())
    sim.run_to(T0 + 60 * S)
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk"]
    sim.run_to(T0 + 61 * S)
    assert alerts(sim)[-2:] == [("C1", "ACCEPT", "SlaOverdue"), ("C1", "ACCEPT", "SlaBreached")]


def test_a_dispatch_read_after_its_deadlines_warns_in_time_order_from_what_was_read_with_it() -> None:
    """A backfill: the dispatch comes after the case's field events and long after its deadlines. The warnings
    come at once, in order, decided on the field events already read: a stage met in time has none."""
    sim = Sim()
    sim.feed(_field_event(ACCEPT, T0 + 30 * S), T0 + 31 * S)  # on time
    sim.feed(_field_event(ARRIVE, T0 + 500 * S), T0 + 501 * S)  # 20 s late: contact (implied) at 500 s too
    sim.feed(dispatched(), T0 + 3600 * S)  # the clock is where the data left it: 500 s after the dispatch
    contact = [("C1", "CONTACT", kind) for kind in KINDS]
    assert alerts(sim) == [*contact, ("C1", "ARRIVE", "SlaAtRisk"), ("C1", "ARRIVE", "SlaOverdue")]
    sim.run_to(T0 + 3700 * S)
    assert alerts(sim) == [*contact, *(("C1", "ARRIVE", kind) for kind in KINDS)]


def test_another_case_moves_the_clock_past_a_lead_and_warns_without_a_tick() -> None:
    sim = Sim()
    sim.feed(dispatched())
    sim.feed(field(ACCEPT, T0 + 45 * S, case="OTHER"), T0 + 45 * S)  # data alone: the clock is at 45 s
    assert of_stage(sim, "ACCEPT") == ["SlaAtRisk"]


def test_duplicates_and_a_restart_between_the_warnings_repeat_none() -> None:
    store: dict[str, Any] = {}
    first = Sim(store)
    first.feed(dispatched())
    first.feed(dispatched())
    first.run_to(T0 + 50 * S)
    assert alerts(first) == [("C1", "ACCEPT", "SlaAtRisk")]
    second = Sim(store)  # a new process, from the logged state
    second.run_to(T0 + 20 * 60 * S)
    assert ("C1", "ACCEPT", "SlaAtRisk") not in alerts(second)
    assert [k for c, s, k in alerts(second) if s == "ACCEPT"] == ["SlaOverdue", "SlaBreached"]


def test_the_leads_are_the_districts() -> None:
    district = replace(DISTRICT, sla=replace(DISTRICT.sla, leads={"accept": 5 * S, "contact": 60 * S, "arrive": S}))
    engine = CaseEngine(district, POLICY, 1, 1)
    engine.load(0, None, [])
    out: list[Event] = []
    for n, e in enumerate([dispatched(), *(_tick("tick/0", T0 + i * S) for i in range(1, 60))]):
        out += [x.event for x in engine.on_record(Record(e, "t", 0, n, b"", b"", e.occurred_at))]
    [risk] = [e for e in out if e.type == "SlaAtRisk"]  # the accept warning only: contact and arrive are later
    assert risk.fields["occurred_at"] == T0 + 55 * S + MS and risk.fields["lead_ms"] == 5000


# ---- decided from the log: the same log gives the same warnings -------------------------------------------------


@dataclass(frozen=True)
class Logged:
    event: Event
    appended_at: datetime


class Partition:
    """One case-events partition; after each record its state goes through the changelog's bytes, as the agent
    logs it after each batch, and a new Partition on the same store is a restarted worker."""

    def __init__(self, store: dict[str, bytes], district: District = DISTRICT) -> None:
        self.store = store
        self.engine = CaseEngine(district, POLICY, routing_partitions=1, outcome_partitions=1)
        entries = dict(store)
        meta = entries.pop(META, None)
        self.engine.load(
            0,
            None if meta is None else state.decode_case_meta(json.loads(meta)),
            [state.decode_case(k, json.loads(v), CODEC) for k, v in entries.items()],
        )
        self.offset = 0

    def feed(self, record: Logged) -> list[Event]:
        value = CODEC.encode(record.event)
        out = self.engine.on_record(
            Record(record.event, "t.case-events", 0, self.offset, b"k", value, record.appended_at)
        )
        self.offset += 1
        for key, v in self.engine.flush(0):
            if v is None:
                self.store.pop(key, None)
            elif isinstance(v, CaseMeta):
                self.store[key] = state.dumps(state.encode_case_meta(v))
            else:
                assert isinstance(v, Case)
                self.store[key] = state.dumps(state.encode_case(v))
        return [e.event for e in out if e.event.type in KINDS]

    def clock(self) -> datetime | None:
        watermark = self.engine.clock(0).watermark
        return None if watermark is None else watermark + POLICY.lateness


def _log(seed: int, n_cases: int) -> list[Logged]:
    """Cases dispatched within five minutes, field events read up to 90 s late (the lateness is 60 s), ticks
    every 5 s of log time: one case-events partition's log, in append order."""
    rng = random.Random(seed)
    records: list[tuple[datetime, int, Event]] = []
    for i in range(n_cases):
        case, at = f"P{i}", T0 + timedelta(seconds=rng.randint(0, 300))
        records.append((at + timedelta(seconds=rng.randint(0, 3)), len(records), dispatched(case, at)))
        for kind in (ACCEPT, CONTACT, ARRIVE, rng.choice([CONCLUDE, CLOSE])):
            if rng.random() < 0.6:
                t = at + timedelta(seconds=rng.randint(5, 560))
                e = _field_event(kind, t)
                e = Event(e.type, {**e.fields, "case_id": case, "event_id": f"{case}-{kind}"})
                records.append((t + timedelta(seconds=rng.choice([0, 0, 1, 20, 45, 75, 90])), len(records), e))
    end = max(t for t, _, _ in records) + timedelta(minutes=12)
    tick = T0 + 5 * S
    while tick < end:
        records.append((tick, len(records), _tick("tick/0", tick)))
        tick += 5 * S
    return [Logged(e, t) for t, _, e in sorted(records, key=lambda r: (r[0], r[1]))]


def _run(log: list[Logged], restart_at: int | None = None, twice: bool = False) -> list[list[Event]]:
    """What each record made the engine publish (warnings and breaches)."""
    store: dict[str, bytes] = {}
    partition = Partition(store)
    out: list[list[Event]] = []
    for n, record in enumerate(log):
        if n == restart_at:
            partition = Partition(store)
        out.append(partition.feed(record))
        if twice and record.event.type != "ClockTicked":  # an upstream duplicate, read right after the original
            assert partition.feed(record) == []
    return out


def _expected(log: list[Logged]) -> dict[tuple[str, str, str], int]:
    """The rule, stated over the log: (case, stage, warning) → the index of the record that decides it.

    A warning is about a time: deadline - lead (at risk) or the deadline (overdue). It is decided at the first
    record where the case's dispatch has been read and the clock without the lateness has passed that time,
    and published unless a record read by then meets or cancels the stage at or before that time."""
    clock, clocks = PartitionClock(), list[datetime | None]()
    for r in log:  # the partition's clock (clock.py, tested on its own) as its records move it, without the lateness
        if r.event.type == "ClockTicked":
            clock = clock.on_tick(r.appended_at, POLICY.lateness)
        else:
            clock = clock.on_data(r.event.occurred_at, r.appended_at, POLICY.lateness)
        clocks.append(None if clock.watermark is None else clock.watermark + POLICY.lateness)
    expected: dict[tuple[str, str, str], int] = {}
    for k, r in enumerate(log):
        if r.event.type != "CaseDispatched":
            continue
        f = r.event.fields
        for i, (stage, deadline) in enumerate(
            zip(STAGES, (f["accept_by"], f["contact_by"], f["arrive_by"]), strict=True)
        ):
            for kind, at in (("SlaAtRisk", deadline - LEADS[i]), ("SlaOverdue", deadline)):
                passed = next((n for n, c in enumerate(clocks) if c is not None and c > at), None)
                if passed is None:
                    continue
                decided = max(k, passed)
                settled = any(
                    x.event.fields.get("case_id") == f["case_id"]
                    and STAGE_TYPES.get(x.event.type, 3) >= i
                    and x.event.type != "ClockTicked"
                    and x.event.type != "CaseDispatched"
                    and x.event.occurred_at <= at
                    for x in log[: decided + 1]
                )
                if not settled:
                    expected[(f["case_id"], stage, kind)] = decided
    return expected


def _published(out: list[list[Event]]) -> dict[tuple[str, str, str], int]:
    found: dict[tuple[str, str, str], int] = {}
    for n, events in enumerate(out):
        for e in events:
            key = (e.fields["case_id"], e.fields["stage"], e.type)
            assert key not in found, f"{key} published twice"  # at most one per case, stage and kind
            found[key] = n
    return found


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n_cases=st.integers(1, 5), restart=st.floats(0, 1))
def test_warnings_are_decided_from_the_log_once_in_order_and_the_same_on_replay_restart_and_duplicates(
    seed: int, n_cases: int, restart: float
) -> None:
    log = _log(seed, n_cases)
    live = _run(log)
    published = _published(live)
    warnings = {k: n for k, n in published.items() if k[2] != "SlaBreached"}
    assert warnings == _expected(log)
    for case, stage, kind in published:  # what is known only grows: breached ⇒ overdue ⇒ at risk, in that order
        if kind == "SlaBreached":
            assert published[(case, stage, "SlaOverdue")] <= published[(case, stage, kind)]
        if kind == "SlaOverdue":
            assert published[(case, stage, "SlaAtRisk")] <= published[(case, stage, kind)]
    flat = [e for events in live for e in events]
    assert [e for events in _run(log) for e in events] == flat  # a replay of the same log
    assert [e for events in _run(log, restart_at=int(restart * len(log))) for e in events] == flat
    assert [e for events in _run(log, twice=True) for e in events] == flat


def test_live_and_a_backfill_give_the_same_certain_warnings_and_differ_only_in_provisional_ones() -> None:
    """A day published before the worker starts decides every warning from the whole log: only the warnings on
    stages nothing met by their time (chaos.model's certain ones) are the live run's, and they are all there."""
    events = _cases(20, seed=4)
    live = Sim()
    read = {e.event_id: e.occurred_at + (30 * S if e.type == ACCEPT else 0 * S) for e in events}  # acceptances late
    for e in sorted(events, key=lambda e: read[e.event_id]):
        live.run_to(read[e.event_id])
        live.feed(e, read[e.event_id] + MS)
    live.run_to(events[-1].occurred_at + timedelta(minutes=30))
    backfill = Sim()
    today = T0 + timedelta(days=30)
    for i, e in enumerate(e for e in events if e.type != "CaseDispatched"):
        backfill.feed(e, today + i * 5 * MS)
    for i, e in enumerate(e for e in events if e.type == "CaseDispatched"):
        backfill.feed(e, today + S + i * 5 * MS)
    backfill.run_to(today + timedelta(minutes=30))

    def decisions(sim: Sim) -> Decisions:
        return Decisions({"case-events": [e for e in events if e.type != "CaseDispatched"], "sla-alerts": sim.out})

    certain = decisions(live).certain_alerts()
    assert certain and certain == decisions(backfill).certain_alerts()
    assert certain <= decisions(backfill).alerts() and certain <= decisions(live).alerts()
    provisional = decisions(live).alerts() - certain  # accepted in time, read after the clock passed the time
    assert provisional and all(stage == "ACCEPT" for _, stage, _, _ in provisional)
    assert decisions(backfill).alerts() == certain  # the backfill read every acceptance before its dispatch


def test_the_warnings_counted_off_survive_the_changelog_and_old_entries_read_as_none_decided() -> None:
    case = replace(Case("C1"), alerted=(2, 1, 0))
    encoded = json.loads(state.dumps(state.encode_case(case)))
    assert state.decode_case("C1", encoded, CODEC).alerted == (2, 1, 0)
    assert state.decode_case("C1", encoded[:14], CODEC).alerted == (0, 0, 0)  # logged before the warnings


# ---- the deadline index stays bounded ---------------------------------------------------------------------------


def test_the_deadline_index_stays_bounded_by_the_open_cases_over_many_updates() -> None:
    """Settled cases keep receiving events (corrections, repeated reports): each moves the case's next time (its
    retention) later. The index keeps one live entry per case, and its heap at most twice that plus a slack."""
    sim = Sim()
    cases = [f"U{i}" for i in range(20)]
    for case in cases:
        sim.feed(dispatched(case, T0))
        sim.feed(Event(CLOSE, {**field(CLOSE, T0 + 10 * S, case=case, reported_to=[]).fields}))
    sim.run_to(T0 + 600 * S, step=10 * S)  # every deadline decided, every holder released
    agenda = sim.engine.partitions[0].due
    for update in range(300):
        at = T0 + 600 * S + update * S
        for case in cases:
            sim.feed(field(CONTACT, at, case=case, event_id=f"{case}-{update}", method="PHONE"), at)
    assert len(sim.cases) == len(cases) == len(agenda)
    assert agenda.stored <= 2 * len(cases) + agenda.SLACK, agenda.stored  # 6,000 before the index was bounded
