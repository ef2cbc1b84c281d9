"""The outcome and hotspot folds, on a virtual clock: corrections, double conclusions, order-independence,
and every hotspot episode transition."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import Event
from streams.domain.hotspots import HotspotRule, Sighting, Spot, expire, new_spot, observe
from streams.domain.outcomes import (
    CaseKey,
    DailyOutcome,
    contribution_from_list,
    contribution_to_list,
    count_conclusion,
    nearest_rank,
    outcome_from_dict,
    success_rate,
)
from streams.reference_files import load_district

T0 = datetime(2026, 5, 12, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
KEY = CaseKey("330114005", "HZ-T03", "dispute.market", "MEDIATION", T0)
DISTRICT = load_district()


def conclusion(case: str, minutes: float, outcome: str = "RESOLVED", comp: str | None = None, eid: str = "") -> Event:
    return Event(
        "MediationConcluded",
        {
            "event_id": eid or f"c-{case}-{minutes}",
            "occurred_at": T0 + timedelta(minutes=minutes),
            "source": "gridapp",
            "case_id": case,
            "worker_id": "GW-01",
            "outcome": outcome,
            "compensation": None if comp is None else Decimal(comp),
            "summary": "",
        },
    )


def fold_case(conclusions: list[Event]) -> list[Event]:
    counted, out = None, []
    for c in conclusions:
        counted, events = count_conclusion(KEY, counted, c)
        out += events
    return out


def aggregate(counted: list[Event]) -> dict[str, DailyOutcome]:
    aggs: dict[str, DailyOutcome] = {}
    for i, e in enumerate(counted):
        f = e.fields
        agg = aggs.setdefault(f["stats_key"], DailyOutcome({"stats_key": f["stats_key"]}))
        agg.apply(f, i + 1)
    return aggs


def summary(aggs: dict[str, DailyOutcome]) -> dict[str, tuple[Any, ...]]:
    out = {}
    for key, agg in aggs.items():
        f = agg.stats_event({"RESOLVED"}, T0).fields
        out[key] = (f["concluded"], f["success"], f["unresolved"], f["compensation"], f["duration_sum_ms"], f["p90_ms"])
    return out


def test_a_case_concluded_twice_counts_once_with_its_latest_outcome() -> None:
    events = fold_case([conclusion("A", 30, "UNRESOLVED"), conclusion("A", 90, "RESOLVED", "100.50")])
    [(key, agg)] = aggregate(events).items()
    assert key.endswith("2026-05-12")
    assert summary({key: agg})[key] == (1, 1, 0, Decimal("100.50"), 90 * 60_000, 90 * 60_000)


def test_a_correction_on_the_next_day_moves_the_case_out_of_its_old_day() -> None:
    # 23:50 local, corrected at 00:30 local the next day
    events = fold_case([conclusion("A", 13 * 60 + 50, "RESOLVED"), conclusion("A", 14 * 60 + 30, "UNRESOLVED")])
    assert [e.fields["counts"] for e in events] == [True, False, True]
    result = summary(aggregate(events))
    assert result == {
        KEY.stats_key(datetime(2026, 5, 12).date()): (0, 0, 0, Decimal("0.00"), 0, None),
        KEY.stats_key(datetime(2026, 5, 13).date()): (
            1,
            0,
            1,
            Decimal("0.00"),
            (14 * 60 + 30) * 60_000,
            (14 * 60 + 30) * 60_000,
        ),
    }


def test_a_late_earlier_conclusion_changes_nothing() -> None:
    late_first = fold_case([conclusion("A", 90, "RESOLVED"), conclusion("A", 30, "UNRESOLVED")])
    assert len(late_first) == 1  # the earlier one arrived after the later one: it is not counted
    assert summary(aggregate(late_first)) == summary(
        aggregate(fold_case([conclusion("A", 30, "UNRESOLVED"), conclusion("A", 90, "RESOLVED")]))
    )


conclusions = st.lists(
    st.tuples(
        st.sampled_from("ABCD"),
        st.integers(0, 3000),
        st.sampled_from(["RESOLVED", "UNRESOLVED", "NO_ACTION_NEEDED"]),
        st.sampled_from([None, "10.00", "2500.25"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(conclusions, st.randoms(use_true_random=False))
def test_the_aggregate_is_the_same_for_any_order_and_repetition_of_its_inputs(
    items: list[tuple[str, int, str, str | None]], rnd: Any
) -> None:
    per_case: dict[str, list[Event]] = {}
    for i, (case, minutes, outcome, comp) in enumerate(items):
        per_case.setdefault(case, []).append(conclusion(case, minutes, outcome, comp, eid=f"e{i}"))
    # per case in log order (stage 1), then the OutcomeCounted events in any order, some twice (stage 2)
    counted = [e for events in per_case.values() for e in fold_case(events)]
    shuffled = counted + rnd.sample(counted, k=len(counted) // 2)
    rnd.shuffle(shuffled)
    assert summary(aggregate(shuffled)) == summary(aggregate(counted))
    # and stage 1 itself: any order of a case's conclusions ends with the same contribution
    reordered = {case: rnd.sample(events, k=len(events)) for case, events in per_case.items()}
    again = [e for events in reordered.values() for e in fold_case(events)]
    assert _nonzero(summary(aggregate(again))) == _nonzero(summary(aggregate(counted)))


def _nonzero(s: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {k: v for k, v in s.items() if v[0]}


def test_aggregate_state_round_trips_and_definitions() -> None:
    agg = aggregate(fold_case([conclusion("A", 30, "RESOLVED", "1.10")]))
    [value] = agg.values()
    stored = {case: contribution_to_list(c, value.versions[case]) for case, c in value.cases.items()}
    back = {case: contribution_from_list(v) for case, v in json.loads(json.dumps(stored)).items()}
    again = DailyOutcome(value.key, {c: b[0] for c, b in back.items()}, versions={c: b[1] for c, b in back.items()})
    assert again == value and again.stats_event({"RESOLVED"}, T0) == value.stats_event({"RESOLVED"}, T0)
    whole = {"key": value.key, "version": 7, "cases": {c: v[:6] for c, v in stored.items()}}  # before 2026-11-30
    assert outcome_from_dict(whole).cases == value.cases and outcome_from_dict(whole).version == 7
    assert nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert nearest_rank([], 0.9) is None
    assert success_rate(97, 100, 2) == 97 / 98
    assert success_rate(0, 3, 3) is None


# ---- hotspots ---------------------------------------------------------------------------------------------------
RULE = HotspotRule(timedelta(days=30), 3)


def sight(case: str, day: float, place: str = "place:云上澜苑") -> Sighting:
    return Sighting(T0 + timedelta(days=day), case, place, "云上澜苑", "noise", "330114005", "HZ-T03", "GRID_WORKER")


def run(spot: Spot, sightings: list[Sighting], until: datetime | None = None) -> tuple[Spot, list[Event]]:
    out: list[Event] = []
    for s in sightings:
        spot, events = observe(spot, s, RULE)
        out += events
    if until is not None:
        spot, events = expire(spot, until, RULE)
        out += events
    return spot, out


def test_each_episode_transition_on_a_virtual_clock() -> None:
    a, b, c, d = sight("A", 0), sight("B", 1), sight("C", 2), sight("D", 3)
    spot, events = run(new_spot(a), [a, b])
    assert events == [] and not spot.hot  # 2 < 3: nothing yet
    spot, events = run(spot, [c])
    assert [e.type for e in events] == ["HotspotDetected"] and events[0].fields["count"] == 3
    assert events[0].fields["sample_case_ids"] == ["A", "B", "C"] and events[0].fields["team"] == "GRID_WORKER"
    spot, events = run(spot, [d])
    assert [(e.type, e.fields["count"]) for e in events] == [("HotspotUpdated", 4)]
    # A leaves the window on day 30 (count 3, still hot), B on day 31: under the threshold, cooled
    spot, events = run(spot, [], until=T0 + timedelta(days=30, hours=12))
    assert events == [] and spot.hot
    spot, events = run(spot, [], until=T0 + timedelta(days=31, hours=12))
    assert [(e.type, e.fields["count"], e.occurred_at) for e in events] == [
        ("HotspotCooled", 2, T0 + timedelta(days=31))
    ]
    assert not spot.hot
    # re-armed: a new call makes it hot again, as a new episode
    spot, events = run(spot, [sight("E", 31.6)])
    assert [e.type for e in events] == ["HotspotDetected"]
    first_episode = run(new_spot(a), [a, b, c])[1][0].fields["episode_id"]
    assert events[0].fields["episode_id"] != first_episode
    # the same case again is a re-delivery
    assert run(spot, [sight("E", 31.6)])[1] == []
