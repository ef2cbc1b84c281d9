"""Every view and every report, agenda and verify query gives one answer, whoever runs it.

The same data is read through the worker's read-only endpoint (what `alarmflow query`, the report and
verify use) and directly, with join_use_nulls off and on: the results must be identical. Known repeat
calls are counted exactly, and every timestamp in the output carries its zone.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from projections.client import connect
from projections.query import plain
from projections.recount import HOTSPOT_DIFFERENCES, OUTCOME_DIFFERENCES, TOTALS
from streams.kafka_admin import wait_caught_up
from streams.reference_files import load_hotspot_policy
from streams.report import AGENDA, OVERALL_SUCCESS, SECTIONS
from streams.verify import hotspot_parameters
from tests.factories import alarm, case_events
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration
TZ = timezone(timedelta(hours=8))
DAY0 = datetime(2026, 5, 11, 10, 0, tzinfo=TZ)

# case: (days after DAY0, hours, caller, address, category)
CALLS: dict[str, tuple[int, int, str, str, str]] = {
    "R1": (1, 0, "13800000001", "云上澜苑 3幢", "noise.renovation"),
    "R2": (2, 0, "13800000001", "河庄农贸市场 东门", "dispute.market"),  # same caller as R1: a repeat
    "R3": (3, 0, "13800000002", "云上澜苑 5幢", "noise.renovation"),  # same place and category as R1
    "R4": (4, 0, "13800000001", "云上澜苑 7幢", "noise.renovation"),  # both: R3 is the most recent
    "R5": (4, 0, "13800000003", "江东花园 1幢", "dispute.neighbour"),
    "R6": (12, 0, "13800000003", "江东花园 1幢", "dispute.neighbour"),  # 8 days after R5: not a repeat
    "R7": (5, 0, "13800000004", "某路 7号", "dispute.neighbour"),
    "R8": (5, 0, "13800000004", "某路 8号", "dispute.neighbour"),  # the same time as R7: neither repeats
    "R9": (5, 1, "13800000004", "某路 9号", "dispute.neighbour"),  # R7 and R8 tie: the greater id wins
}
REPEATS = {
    "R2": ("R1", ["caller"]),
    "R3": ("R1", ["place"]),
    "R4": ("R3", ["caller", "place"]),
    "R9": ("R8", ["caller"]),
}


def _events() -> list[dict[str, Any]]:
    rng = random.Random(42)
    out: list[dict[str, Any]] = []
    for case, (days, hours, phone, address, category) in CALLS.items():
        at = DAY0 + timedelta(days=days, hours=hours)
        a = alarm(rng, case, at, phone=phone)
        a.update({"category": category, "police_matter": "NON_POLICE", "priority": 3})
        a["location"] = {**a["location"], "address": address, "lat": None, "lon": None}
        events = case_events(rng, case, at)
        if case == "R5":  # concluded with compensation, then corrected to none: the correction counts
            new_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            correction = {**events[3], "event_id": new_id, "compensation": None}
            correction["occurred_at"] = (
                datetime.fromisoformat(events[3]["occurred_at"]) + timedelta(hours=1)
            ).isoformat()
            events.append(correction)
        out += [a, *events]
    return sorted(out, key=lambda e: e["occurred_at"])


def _queries() -> list[tuple[str, str, dict[str, Any]]]:
    policy = load_hotspot_policy()
    day = date(2026, 5, 16).isoformat()
    return [
        *((f"section {s.title[:30]}", s.sql, {}) for s in SECTIONS),
        ("overall success", OVERALL_SUCCESS, {}),
        ("agenda", AGENDA, {"day": day}),
        ("verify outcomes", OUTCOME_DIFFERENCES, {"success": ["RESOLVED"]}),
        ("verify hotspots", HOTSPOT_DIFFERENCES, hotspot_parameters(policy)),
        ("verify totals", TOTALS, {}),
    ]


def _canonical(rows: list[list[Any]]) -> list[str]:
    return sorted(repr(row) for row in rows)


def _projector_caught_up(stack: Stack) -> None:
    group = f"{stack.settings.app_id}-projector"
    asyncio.run(wait_caught_up(stack.settings.kafka_bootstrap, {group: stack.settings.consumer_groups()[group]}, 120))


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def test_every_read_path_gives_the_same_answer_and_repeats_are_exact(stack: Stack) -> None:
    worker = stack.start_worker()
    stack.publish(_events())
    stack.caught_up()
    stack.stop(worker, signal.SIGTERM)
    # A projector alone serves the endpoint: no agent can add a decision between the two reads.
    stack.start_worker(ALARMFLOW_ROLE="projector")
    _projector_caught_up(stack)
    views = [
        row[0]
        for row in stack.sql(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'View' ORDER BY name"
        )
    ]
    assert {
        "cases",
        "case_stages",
        "v_repeat_calls",
        "v_hotspot_history",
        "v_sla_compliance",
        "v_sla_alert_outcomes",
    } <= set(views)
    queries = [*((f"view {v}", f"SELECT * FROM {v}", {}) for v in views), *_queries()]
    through_worker = {name: stack.sql(sql, **params) for name, sql, params in queries}
    assert through_worker["view v_sla_alert_outcomes"], "the cases' warnings are compared too, not an empty view"

    repeats = {r[0]: (r[1], r[2]) for r in stack.sql("SELECT case_id, repeat_of, repeat_reasons FROM cases")}
    assert {c: v for c, v in repeats.items() if v[0] is not None} == {c: (p, list(r)) for c, (p, r) in REPEATS.items()}
    assert all(reasons == [] for case, (_, reasons) in repeats.items() if case not in REPEATS)
    assert stack.sql(
        "SELECT count(), countIf(repeat_of IS NOT NULL), countIf(notEmpty(repeat_reasons)) FROM cases"
    ) == [[len(CALLS), len(REPEATS), len(REPEATS)]]
    assert stack.sql("SELECT compensation, outcome FROM cases WHERE case_id = 'R5'") == [[None, "RESOLVED"]]
    assert stack.sql("SELECT count() FROM (" + OUTCOME_DIFFERENCES + ")", success=["RESOLVED"]) == [[0]]
    # one quantile definition: verify recounts the stream's nearest-rank P50/P90 from the cases (the query above)
    assert stack.scalar("SELECT countIf(p90_ms IS NULL) FROM v_outcome_daily WHERE concluded > 0") == 0

    stamps = [v for rows in through_worker.values() for row in rows for v in row if isinstance(v, str) and ISO.match(v)]
    assert stamps, "the queries return timestamps"
    assert all(s.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", s) for s in stamps), [
        s for s in stamps if not s.endswith("Z")
    ][:5]

    stack.stop(stack.workers[-1], signal.SIGTERM)
    client = connect(stack.settings.dsn)
    for join_use_nulls in (0, 1):
        for name, sql, params in queries:
            result = client.query(sql, parameters=params, settings={"join_use_nulls": join_use_nulls})
            direct = [[plain(v) for v in row] for row in result.result_rows]
            assert _canonical(direct) == _canonical(through_worker[name]), (name, join_use_nulls)
