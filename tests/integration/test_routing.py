"""Routing on the real broker: every path of triage, location and dispatch ends up projected, once."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from streams.reference_files import load_district
from tests.factories import alarm
from tests.integration.conftest import Stack

DISTRICT = load_district()
TZ = timezone(timedelta(hours=8))
V05 = DISTRICT.grid("HZ-V05").polygon.representative_point()  # type: ignore[union-attr]

DEAD = "DEAD_LETTERED"
# (alarm fields, expected disposition, expected triage rule, expected location rule, expected dispatch rule)
PATHS: list[tuple[dict[str, Any], str, str, str, str | None]] = [
    ({"police_matter": "POLICE", "category": "noise.renovation"}, "POLICE", "triage.110_police", "", None),
    ({"priority": 1, "category": "dispute.market"}, "POLICE", "triage.priority_1", "", None),
    # Not in the taxonomy: dead-lettered by triage (each copy), to be re-driven once the taxonomy has it.
    ({"category": "noise.unheard_of"}, DEAD, "UnknownCategory", "", None),
    ({"police_matter": "NON_POLICE", "category": "crime.theft"}, "REVIEW", "triage.contradiction", "", None),
    ({"category": "dispute.family"}, "REVIEW", "triage.category_review", "", None),
    (
        {"category": "noise.renovation", "grid_code": "HZ-V05"},
        "NON_POLICE",
        "triage.category",
        "location.grid_code",
        "dispatch.grid_member",
    ),
    (
        {"category": "noise.renovation", "lat": V05.y, "lon": V05.x},
        "NON_POLICE",
        "triage.category",
        "location.point",
        "dispatch.grid_member",
    ),
    (
        {"category": "dispute.market", "address": "河庄农贸市场 东门"},
        "NON_POLICE",
        "triage.category",
        "location.gazetteer",
        "dispatch.street_pool",
    ),
    (
        {"category": "dispute.market", "lat": 31.9, "lon": 121.9},
        "NON_POLICE",
        "triage.category",
        "location.street_pool",
        "dispatch.street_pool",
    ),
    ({"category": "dispute.market", "street_code": None}, "REVIEW", "location.unresolved", "location.unresolved", None),
    (
        {"category": "dispute.market", "grid_code": "HZ-T03", "street_code": "330114006"},
        "REVIEW",
        "location.conflict_unresolved",
        "location.conflict_unresolved",
        None,
    ),
]


def _alarms() -> list[dict[str, Any]]:
    rng = random.Random(3)
    at = datetime(2026, 5, 12, 10, 0, tzinfo=TZ)
    out = []
    for i, (over, *_rest) in enumerate(PATHS):
        a = alarm(rng, f"R{i:03d}", at + timedelta(minutes=i))
        a.update({"police_matter": "UNKNOWN", "priority": 3})
        a["location"] = {
            "address": over.pop("address", "某路1号"),
            "lat": over.pop("lat", None),
            "lon": over.pop("lon", None),
            "street_code": over.pop("street_code", "330114005"),
            "grid_code": over.pop("grid_code", None),
        }
        a.update(over)
        out.append(a)
    return out


def test_every_routing_path_is_projected_once(stack: Stack) -> None:
    alarms = _alarms()
    stack.start_worker()
    stack.publish(alarms)
    stack.publish(alarms)  # an upstream re-send must not triage or dispatch anything twice
    stack.caught_up()
    rows = {
        r[0]: r[1:] for r in stack.sql("SELECT case_id, disposition, rule, location_rule FROM triage ORDER BY case_id")
    }
    dispatches = {
        r[0]: r[1:]
        for r in stack.sql("SELECT case_id, rule, team, level, assignee_id FROM dispatches ORDER BY case_id")
    }
    for i, (_, disposition, rule, location_rule, dispatch_rule) in enumerate(PATHS):
        case = f"R{i:03d}"
        if disposition == DEAD:
            assert case not in rows and case not in dispatches, case
            letters = "SELECT count() FROM deadletters WHERE error_class = {c:String} AND position(reason, {a:String})"
            assert stack.scalar(letters, c=rule, a=f"'{case}'") == 2, case  # the alarm and its re-send
            continue
        assert list(rows[case][:2]) == [disposition, rule], case
        if location_rule:
            assert rows[case][2] == location_rule, case
        if dispatch_rule is None:
            assert case not in dispatches, case
        else:
            assert dispatches[case][0] == dispatch_rule, case
            assert dispatches[case][3], case  # someone on duty at 10:00 got it
    triaged = sum(1 for p in PATHS if p[1] != DEAD)
    assert stack.sql("SELECT count(), uniqExact(event_id), uniqExact(case_id) FROM triage") == [[triaged] * 3]
    n_dispatch = sum(1 for p in PATHS if p[4] is not None)
    assert stack.sql("SELECT count(), uniqExact(case_id) FROM dispatches") == [[n_dispatch, n_dispatch]]
    review = {r[0] for r in stack.sql("SELECT case_id FROM v_review_queue")}
    assert review == {f"R{i:03d}" for i, p in enumerate(PATHS) if p[1] == "REVIEW"}
    assert stack.scalar("SELECT sum(cases) FROM v_routing") == n_dispatch
    # the seed's 1/3/8 minutes for every case, named on every dispatch, and logged at start
    assert stack.sql("SELECT DISTINCT sla_rule FROM dispatches") == [["default"]]
    assert stack.sql(
        "SELECT DISTINCT dateDiff('second', occurred_at, accept_by), dateDiff('second', occurred_at, contact_by), "
        "dateDiff('second', occurred_at, arrive_by) FROM dispatches"
    ) == [[60, 180, 480]]
    assert "SLA policy in force: " in stack.worker_log() and "default 60/180/480 s" in stack.worker_log()


def test_an_alarm_resent_with_a_new_event_id_that_resolves_to_another_street_is_dispatched_once(stack: Stack) -> None:
    """The 110 centre re-sends an alarm (a new event id) after correcting its location into Yipeng: still one case,
    one triage, one dispatch, across both streets' routing partitions."""
    rng = random.Random(9)
    at = datetime(2026, 5, 12, 10, 0, tzinfo=TZ)
    first = alarm(rng, "TWICE", at)
    first.update({"police_matter": "NON_POLICE", "priority": 3, "category": "dispute.market"})
    first["location"] = {"address": "某路1号", "lat": None, "lon": None, "street_code": "330114005", "grid_code": None}
    again = {**first, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    again["location"] = {**first["location"], "street_code": "330114006"}
    stack.start_worker()
    stack.publish([first])
    stack.publish([again])
    stack.caught_up()
    assert stack.sql("SELECT count(), any(street_code) FROM dispatches WHERE case_id = 'TWICE'") == [[1, "330114005"]]
    assert stack.sql("SELECT count() FROM triage WHERE case_id = 'TWICE'") == [[1]]
    assert stack.sql("SELECT count() FROM events WHERE type = 'AlarmReceived' AND case_id = 'TWICE'") == [[2]]
