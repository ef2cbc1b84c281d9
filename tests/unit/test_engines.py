"""The triage, street and outcome engines on a virtual clock: dispatch and load, hotspots, one triage per alarm,
sealed days, announcements, restarts from the logged state, and state that stays bounded. No Kafka."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import Event
from streams.agents.wiring import OutcomeBinding, StreetBinding, TriageBinding
from streams.domain.clock import announcement
from streams.domain.district import LOCAL_TZ, Category, Disposition, Team
from streams.domain.engine import META, Changes, Emit, Record
from streams.domain.hotspots import HotspotPolicy, HotspotRule
from streams.domain.outcome_engine import OutcomeEngine
from streams.domain.outcomes import CaseKey, count_conclusion
from streams.domain.routing import Alarm, decide, triaged_event
from streams.domain.street_engine import Holder, StreetEngine
from streams.domain.triage_engine import TriageEngine
from streams.reference_files import load_district

DISTRICT = load_district()
HZ = "330114005"
T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)  # 12:00 in Hezhuang
S = timedelta(seconds=1)
DAY = timedelta(days=1)
RETENTION = timedelta(hours=72)
RULE = HotspotRule(timedelta(days=30), 3)


class Harness:
    """One partition of any engine, fed in log order; its state is logged to ``store`` after every record as the
    agent logs it after each batch (through the engine's binding, as bytes), and ``restart`` builds a new engine
    from that store."""

    def __init__(self, make: Any) -> None:
        self.make = make
        self.store: dict[str, bytes] = {}
        self.offset = 0
        self.emits: list[Emit] = []
        self.restart()

    def restart(self) -> None:
        self.binding = self.make()
        self.engine = self.binding.engine
        self.binding.load(0, dict(self.store))

    def feed(self, event: Event, appended_at: datetime | None = None, own: bool = True) -> list[Emit]:
        record = Record(event, "t.in", 0, self.offset, b"k", b"v", appended_at or event.occurred_at, own)
        out = self.engine.on_record(record)
        out += self.engine.announcements(0)
        self.offset += 1
        for key, value in self.engine.flush(0):
            if value is None:
                self.store.pop(key, None)
            else:
                self.store[key] = self.binding.encode(key, value)
        self.emits += out
        return out

    def of(self, kind: str) -> list[Event]:
        return [e.event for e in self.emits if e.event.type == kind]


def _tick(tick_id: str, at: datetime) -> Event:
    fields = {"event_id": str(uuid.uuid4()), "occurred_at": at, "source": "t", "tick_id": tick_id, "partition": 0}
    return Event("ClockTicked", fields)


def alarm(alarm_id: str, at: datetime, **over: Any) -> Alarm:
    base: dict[str, Any] = dict(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{alarm_id}/{at}/{over}")),
        alarm_id=alarm_id,
        occurred_at=at,
        category="dispute.market",
        police_matter="NON_POLICE",
        priority=3,
        address="",
        lat=None,
        lon=None,
        street_code=HZ,
        grid_code="HZ-T03",
        caller_token=None,
    )
    base.update(over)
    return Alarm(**base)


def triaged(a: Alarm) -> Event:
    decision, location = decide(a, DISTRICT)
    return triaged_event(a, decision, location)


# ---- streets: dispatch --------------------------------------------------------------------------------------


def streets(alarm_partitions: int = 1, policy: HotspotPolicy | None = None) -> Harness:
    return Harness(
        lambda: StreetBinding(StreetEngine(DISTRICT, policy or HotspotPolicy(RULE), alarm_partitions, 2, RETENTION))
    )


def released(case: str, at: datetime, street: str = HZ) -> Event:
    fields = {"event_id": f"r-{case}", "occurred_at": at, "source": "w", "case_id": case, "street_code": street}
    return Event("AssignmentReleased", {**fields, "assignee_id": None})


def open_load(h: Harness) -> Counter[str]:
    """The open cases per member, counted from the engine's holders."""
    state = h.engine.partitions[0]
    return Counter(
        v.assignee for v in state.entries.values() if isinstance(v, Holder) and not v.released_at and v.assignee
    )


def test_each_case_is_dispatched_once_and_a_release_gives_the_load_back() -> None:
    h = streets()
    first = triaged(alarm("A1", T0))
    [dispatch] = [e.event for e in h.feed(first) if e.event.type == "CaseDispatched"]
    member = dispatch.fields["assignee_id"]
    assert member and h.engine.open_cases(0, HZ, member) == 1
    assert h.feed(first) == []  # a re-delivery
    h.feed(released("A1", T0 + 10 * S))
    h.feed(released("A1", T0 + 10 * S))  # a repeated release changes nothing
    assert h.engine.open_cases(0, HZ, member) == 0
    assert [e for e in h.feed(first) if e.event.type == "CaseDispatched"] == []  # ended, and still remembered


def test_a_released_case_is_forgotten_after_the_retention_so_the_book_stays_bounded() -> None:
    h = streets()
    for i in range(50):
        at = T0 + i * timedelta(hours=1)
        h.feed(triaged(alarm(f"A{i}", at)))
        h.feed(released(f"A{i}", at + timedelta(minutes=20)))
        h.feed(announcement("alarms/0", at))
    holders = [k for k in h.engine.partitions[0].entries if k.startswith("h/")]
    assert len(holders) <= 74  # the last 72 hours of released cases, not all 50 ever... bounded by the retention
    h.feed(announcement("alarms/0", T0 + timedelta(days=10)))
    assert [k for k in h.engine.partitions[0].entries if k.startswith("h/")] == []
    assert [k for k in h.store if k.startswith("h/")] == []  # the forgetting is logged too


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["alarm", "release", "again", "restart"]), st.integers(0, 9)), max_size=60)
)
def test_the_load_always_equals_the_open_cases_even_across_restarts(steps: list[tuple[str, int]]) -> None:
    h = streets()
    opened: set[str] = set()
    at = T0
    for kind, n in steps:
        at += 10 * S
        case = f"C{n}"
        if kind in ("alarm", "again"):
            h.feed(triaged(alarm(case, at)))
            opened.add(case)
        elif kind == "release":
            h.feed(released(case, at))
        else:
            h.restart()
        load = {k: v for k, v in h.engine.partitions[0].load.items()}
        assert load == {f"{HZ}\t{m}": n for m, n in open_load(h).items()}


def test_ten_thousand_alarms_nobody_is_given_a_case_outside_their_shift() -> None:
    rng = random.Random(20261128)
    members = {m.member_id: m for m in DISTRICT.members}
    h = streets()
    non_police = [c.code for c in DISTRICT.categories if c.disposition == Disposition.NON_POLICE]
    levels: Counter[str] = Counter()
    for i in range(10_000):
        grid = rng.choice(DISTRICT.grids)
        p = grid.polygon.representative_point()
        at = T0 + timedelta(seconds=rng.randint(0, 30 * 86400))
        a = alarm(f"L{i}", at, category=rng.choice(non_police), lat=p.y, lon=p.x, street_code=None, grid_code=None)
        t = triaged(a)
        if t.fields["disposition"] != "NON_POLICE":
            continue
        [d] = [
            e.event.fields for e in h.engine.on_record(Record(t, "t", 0, i, None, b"", at)) if e.topic == "case-events"
        ]
        levels[d["level"]] += 1
        if d["assignee_id"] is not None:
            m = members[d["assignee_id"]]
            assert m.on_duty_at(at.astimezone(LOCAL_TZ).time()), (d["assignee_id"], at)
            assert m.team == d["team"] and m.street_code == d["street_code"] == grid.street_code
            assert m.grid_code in (grid.code, None)
        if rng.random() < 0.7:  # most cases close again, the rest stay open and weigh on the counts
            h.engine.on_record(Record(released(d["case_id"], at, d["street_code"]), "t", 0, i, None, b"", at))
    assert levels["GRID"] > 1000 and levels["STREET_POOL"] > 1000


def test_announcements_follow_the_slowest_alarms_partition_after_the_dispatches() -> None:
    h = streets(alarm_partitions=2)
    h.feed(triaged(alarm("A1", T0)))
    assert h.feed(announcement("alarms/0", T0 + S)) == []  # partition 1 has not spoken
    out = h.feed(announcement("alarms/1", T0 + 2 * S))
    assert [(e.topic, e.partition, e.after, e.event.fields["tick_id"], e.event.occurred_at) for e in out] == [
        ("case-events", p, True, "routing/0", T0 + S) for p in (0, 1)
    ]
    assert h.feed(announcement("alarms/1", T0 + 3 * S)) == []  # the minimum did not move


def test_another_deployments_records_are_ignored() -> None:
    h = streets()
    assert h.feed(triaged(alarm("A1", T0)), own=False) == []
    assert h.engine.partitions[0].entries == {}


# ---- streets: hotspots --------------------------------------------------------------------------------------


def noise(case: str, day: float, place: str = "云上澜苑") -> Event:
    return triaged(alarm(case, T0 + day * DAY, category="noise.renovation", address=f"{place} 3幢"))


def hotspot_run(records: list[Event], alarm_partitions: int = 2) -> list[tuple[str, str, int]]:
    h = streets(alarm_partitions)
    for r in records:
        h.feed(r)
    return [
        (e.type, e.fields["sample_case_ids"][-1], e.fields["count"])
        for e in h.of("HotspotDetected") + h.of("HotspotUpdated") + h.of("HotspotCooled")
    ]


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False))
def test_hotspots_wait_for_every_source_and_ignore_arrival_order(rnd: Any) -> None:
    alarms = [noise(f"C{i}", i * 0.5) for i in range(8)]
    ten = T0 + 10 * DAY
    in_order = hotspot_run([*alarms, announcement("alarms/0", ten), announcement("alarms/1", ten)])
    assert ("HotspotDetected", "C2", 3) in in_order and len(in_order) == 6
    shuffled = rnd.sample(alarms, k=len(alarms))
    assert hotspot_run([announcement("alarms/0", ten), *shuffled, announcement("alarms/1", ten)]) == in_order
    assert hotspot_run([*alarms, announcement("alarms/0", ten)]) == []  # one source not heard from yet


def test_a_restart_with_state_ahead_of_the_input_folds_re_deliveries_in_order() -> None:
    """Kill -9 mid-batch: the logged state has the progress and the pending alarms, and the input resumes from an
    older offset, so alarms come again after their time has passed. They are not folded twice."""
    alarms = [noise(f"C{i}", i * 0.5) for i in range(6)]
    ten = T0 + 10 * DAY
    clean = hotspot_run([*alarms, announcement("alarms/0", ten), announcement("alarms/1", ten)])
    h = streets(2)
    for r in [*alarms, announcement("alarms/0", ten), announcement("alarms/1", ten)]:
        h.feed(r)
    h.restart()
    for r in [alarms[5], alarms[3], announcement("alarms/1", ten)]:  # re-delivered from the committed offset
        h.feed(r)
    assert [
        (e.type, e.fields["sample_case_ids"][-1], e.fields["count"])
        for e in h.of("HotspotDetected") + h.of("HotspotUpdated")
    ] == clean


def test_a_cold_spot_is_forgotten_once_its_alarms_leave_the_window() -> None:
    h = streets(1)
    for i in range(2):  # under the threshold of 3: never hot
        h.feed(noise(f"C{i}", i))
    h.feed(announcement("alarms/0", T0 + 5 * DAY))
    assert [k for k in h.engine.partitions[0].entries if k.startswith("s/")]
    h.feed(announcement("alarms/0", T0 + 40 * DAY))
    assert [k for k in h.engine.partitions[0].entries if k.startswith(("s/", "q/"))] == []
    assert [k for k in h.store if k.startswith(("s/", "q/", "w/"))] == []


def test_an_alarm_logs_what_it_changes_not_the_whole_window() -> None:
    """A busy place: each alarm adds one small window entry to the changelog, however many the window holds
    (the whole spot was once logged per batch, so a backfill's changelog grew with the square of its alarms)."""
    h = streets(1)
    logged: list[int] = []
    for i in range(400):
        h.feed(noise(f"C{i:03}", i / 100))
        before = dict(h.store)
        h.feed(announcement("alarms/0", T0 + (i / 100) * DAY + S))
        logged.append(sum(len(k) + len(v) for k, v in h.store.items() if before.get(k) != v))
    spot = next(v for k, v in h.engine.partitions[0].entries.items() if k.startswith("s/"))
    assert len(spot.entries) == 400 and len([k for k in h.store if k.startswith("w/")]) == 400
    # the 400th alarm logs no more than the 60th (both at three-digit offsets: the entries carry one)
    assert max(logged[-50:]) <= max(logged[60:110])
    h.restart()  # and the window comes back whole from the entries
    restored = next(v for k, v in h.engine.partitions[0].entries.items() if k.startswith("s/"))
    assert restored.entries == spot.entries and restored.header == spot.header


def test_a_spot_stored_whole_by_an_older_version_moves_its_window_out_on_the_next_flush() -> None:
    h = streets(1)
    for i in range(3):
        h.feed(noise(f"C{i}", i / 10))
    h.feed(announcement("alarms/0", T0 + DAY))
    [header] = [k for k in h.store if k.startswith("s/")]
    window = sorted(k for k in h.store if k.startswith("w/"))
    old = json.loads(h.store[header])
    old["entries"] = [[int(k.rsplit("\t", 1)[1].split("|")[0]), k.split("|")[-1]] for k in window]
    h.store = {k: v for k, v in h.store.items() if not k.startswith("w/")} | {header: json.dumps(old).encode()}
    h.restart()
    h.feed(noise("C9", 0.5))
    now = sorted(k for k in h.store if k.startswith("w/"))
    assert set(window) < set(now) and len(now) == len(window) + 1 and now[-1].endswith("|C9")
    assert "entries" not in json.loads(h.store[header])


# ---- triage -------------------------------------------------------------------------------------------------


def received(a: Alarm, street: str | None = HZ, grid: str | None = "HZ-T03") -> Event:
    return Event(
        "AlarmReceived",
        {
            "event_id": a.event_id,
            "occurred_at": a.occurred_at,
            "source": "cad110",
            "alarm_id": a.alarm_id,
            "channel": "CALL_110",
            "category": a.category,
            "police_matter": a.police_matter,
            "priority": a.priority,
            "location": {"address": "某路1号", "lat": None, "lon": None, "street_code": street, "grid_code": grid},
            "caller_phone": None,
            "description": "",
        },
    )


def triage() -> Harness:
    return Harness(
        lambda: TriageBinding(TriageEngine(DISTRICT, timedelta(seconds=60), RETENTION, 2, lambda p: f"token:{p}"))
    )


def test_an_alarm_resent_with_a_new_event_id_and_another_street_is_triaged_and_routed_once() -> None:
    h = triage()
    first = [e for e in h.feed(received(alarm("A1", T0))) if not e.after]
    assert [(e.topic, e.key) for e in first] == [("case-events", None), ("routing", HZ)]
    resent = received(alarm("A1", T0 + 30 * S, event_id=str(uuid.uuid4())), street="330114006", grid="YP-T01")
    assert [e for e in h.feed(resent) if not e.after] == []
    h.restart()
    assert [e for e in h.feed(resent) if not e.after] == []  # remembered across a restart


def test_an_alarm_of_an_unknown_category_is_dead_lettered_unremembered_and_triaged_once_the_taxonomy_knows_it() -> None:
    h = triage()
    unknown = received(alarm("U1", T0, category="noise.unheard_of"))
    out = [e for e in h.feed(unknown) if not e.after]
    assert [(e.topic, e.event.type, e.event.fields["error_class"]) for e in out] == [
        ("deadletter", "DeadLettered", "UnknownCategory")
    ]
    letter = out[0].event.fields
    assert letter["origin"] == "t.in/0/0" and letter["payload"] == b"v" and letter["source_key"] == b"k"
    assert "noise.unheard_of" in letter["reason"]
    assert "U1" not in h.engine.partitions[0].seen  # not triaged, so not a duplicate when it comes again
    added = Category("noise.unheard_of", "新噪声", Disposition.NON_POLICE, Team.GRID_WORKER)
    known = replace(DISTRICT, categories=(*DISTRICT.categories, added))
    h.make = lambda: TriageBinding(TriageEngine(known, timedelta(seconds=60), RETENTION, 2, lambda p: f"token:{p}"))
    h.restart()  # the worker restarted with the new reference data; the re-drive brings the same bytes
    again = [e for e in h.feed(unknown) if not e.after]
    assert [e.topic for e in again] == ["case-events", "routing"]
    assert [e for e in h.feed(unknown) if not e.after] == []  # a second re-drive changes nothing


def test_seen_alarms_are_forgotten_after_the_retention_and_progress_is_announced() -> None:
    h = triage()
    for i in range(20):
        h.feed(received(alarm(f"A{i}", T0 + i * timedelta(hours=12))))
    assert len(h.engine.partitions[0].seen) <= 8  # 72 hours of alarms, 12 hours apart (plus the lateness)
    out = h.feed(_tick("tick/0", T0 + 20 * timedelta(hours=12)), T0 + 20 * timedelta(hours=12))
    assert [(e.topic, e.partition, e.after, e.event.fields["tick_id"]) for e in out] == [
        ("routing", p, True, "alarms/0") for p in (0, 1)
    ]


# ---- outcomes -----------------------------------------------------------------------------------------------

KEY = CaseKey(HZ, "HZ-T03", "dispute.market", "MEDIATION", T0)


def counted(case: str, at: datetime, outcome: str = "RESOLVED") -> list[Event]:
    conclusion = Event(
        "MediationConcluded",
        {
            "event_id": f"c-{case}-{at}",
            "occurred_at": at,
            "source": "gridapp",
            "case_id": case,
            "worker_id": "GW-01",
            "outcome": outcome,
            "compensation": Decimal("10.00"),
            "summary": "",
        },
    )
    return count_conclusion(KEY, None, conclusion)[1]


def outcomes() -> Harness:
    return Harness(lambda: OutcomeBinding(OutcomeEngine(2, RETENTION, frozenset({"RESOLVED"}))))


def test_days_are_sealed_after_the_retention_and_a_later_change_is_dead_lettered() -> None:
    h = outcomes()
    for i in range(10):
        for e in counted(f"C{i}", T0 + i * DAY):
            h.feed(e)
    assert len(h.engine.partitions[0].aggregates) == 10
    h.restart()
    assert len(h.engine.partitions[0].aggregates) == 10  # from the logged state
    h.feed(announcement("cases/0", T0 + 9 * DAY))
    assert len(h.engine.partitions[0].aggregates) == 10  # one partition has not spoken: nothing is sealed
    h.feed(announcement("cases/1", T0 + 9 * DAY))
    left = h.engine.partitions[0].aggregates
    heads = [k for k in h.store if k.startswith("a/")]
    assert 3 <= len(left) <= 5 and len(heads) == len(left)
    assert len([k for k in h.store if k != META]) == len(left) + sum(len(a.cases) for a in left.values())
    [late] = h.feed(counted("LATE", T0)[0])
    assert late.topic == "deadletter" and late.event.fields["error_class"] == "BeyondRetention"
    [current] = h.feed(counted("NEW", T0 + 9 * DAY)[0])
    assert current.topic == "outcome-stats"


# ---- a crash that logs only part of a batch -----------------------------------------------------------------


def _crash_run(make: Any, records: list[Event], size: int, crash_at: int | None, cut: int) -> tuple[set[str], Any]:
    """Feed ``records`` in batches of ``size``; at batch ``crash_at`` the outputs go out but only the first ``cut``
    changelog records are logged before the crash, and a restarted engine takes the batch again from the store."""
    store: dict[str, bytes] = {}
    binding = make()
    binding.load(0, {})
    engine = binding.engine
    sent: set[str] = set()
    batches = [records[i : i + size] for i in range(0, len(records), size)]
    b = 0
    crashed = False
    while b < len(batches):
        for offset, event in enumerate(batches[b]):
            emits = engine.on_record(Record(event, "t.in", 0, b * size + offset, b"k", b"v", event.occurred_at))
            sent |= {e.event.event_id for e in emits}
        sent |= {e.event.event_id for e in engine.announcements(0)}
        changes = list(engine.flush(0))
        if b == crash_at and not crashed:
            changes = changes[:cut]
        for key, value in changes:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = binding.encode(key, value)
        if b == crash_at and not crashed:
            crashed = True
            binding = make()  # the restart: state from the log, the batch read again from its first offset
            binding.load(0, dict(store))
            engine = binding.engine
            continue
        b += 1
    return sent, store


def _street_records(seed: int) -> list[Event]:
    """Alarms at two places, some late, under a two-day window: spots go hot, cool, are forgotten and come back."""
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(24):
        at = T0 + i * timedelta(hours=rng.choice([2, 6, 20]))
        out.append(noise(f"C{i}", (at - T0) / DAY, rng.choice(["云上澜苑", "东方茗苑"])))
        if rng.random() < 0.6:
            out.append(released(f"C{i}", at + timedelta(minutes=30)))
        out.append(announcement("alarms/0", at - timedelta(hours=1), at))
    return out


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 1000), size=st.integers(1, 6), crash=st.integers(0, 30), cut=st.integers(0, 40))
def test_a_crash_logging_part_of_a_batch_repeats_outputs_but_loses_and_corrupts_nothing(
    seed: int, size: int, crash: int, cut: int
) -> None:
    """Kill -9 after the outputs are acknowledged and while the state is being logged (the hotspot counts once
    fell below the recount this way): the restarted engine sends no new output and ends in the same state."""
    records = _street_records(seed)

    def make() -> StreetBinding:
        return StreetBinding(StreetEngine(DISTRICT, HotspotPolicy(HotspotRule(2 * DAY, 3)), 1, 2, RETENTION))

    clean_sent, clean_store = _crash_run(make, records, size, None, 0)
    sent, store = _crash_run(make, records, size, crash, cut)
    assert sent == clean_sent
    assert store == clean_store


def test_a_key_created_and_deleted_between_flushes_is_not_logged_but_one_logged_before_gets_its_tombstone() -> None:
    changes = Changes()
    changes.put("q/1", new=True)
    changes.put("q/1")  # changed again, still never logged
    changes.delete("q/1")
    changes.put("h/1", new=True)
    assert changes.drain() == (["h/1"], [])
    changes.delete("h/1")  # logged by the flush above
    changes.put("h/1", new=True)  # created again: the log still holds the old value
    changes.delete("h/1")
    assert changes.drain() == ([], ["h/1"])
    changes.delete("w/1")
    changes.delete("s/1", first=True)  # a header goes before the parts it made moot, whenever they were deleted
    assert changes.drain() == ([], ["s/1", "w/1"])


def _outcome_records(seed: int) -> list[Event]:
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(30):
        at = T0 + timedelta(hours=i * rng.choice([1, 3, 9]))
        out += counted(f"C{rng.randrange(12)}", at, rng.choice(["RESOLVED", "REFERRED", "UNRESOLVED"]))
        if rng.random() < 0.3:
            out += [announcement("cases/0", at - RETENTION), announcement("cases/1", at - RETENTION)]
    return out


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 1000), size=st.integers(1, 6), crash=st.integers(0, 30), cut=st.integers(0, 12))
def test_a_crash_logging_part_of_an_outcome_batch_gives_the_same_versions_and_state(
    seed: int, size: int, crash: int, cut: int
) -> None:
    """An aggregate is stored as its head and one entry per case: whatever prefix of a batch's records reached the
    changelog, the restarted engine publishes the same stats versions (their ids) and ends in the same state."""
    records = _outcome_records(seed)

    def make() -> OutcomeBinding:
        return OutcomeBinding(OutcomeEngine(2, RETENTION, frozenset({"RESOLVED"})))

    clean_sent, clean_store = _crash_run(make, records, size, None, 0)
    sent, store = _crash_run(make, records, size, crash, cut)
    assert sent == clean_sent
    assert store == clean_store
