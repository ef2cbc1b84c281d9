"""The board's countdown colours, case urgency, leads and local day: pure, table-driven."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from projections.query import QueryResult
from streams import board
from streams.reference_files import load_district

T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("now", "met_at", "breached", "lead", "expected"),
    [
        (T0 - 30 * S, None, False, 20, ("ok", 30)),
        (T0 - 21 * S, None, False, 20, ("ok", 21)),
        (T0 - 20 * S, None, False, 20, ("at_risk", 20)),  # exactly the lead before: at risk
        (T0 - 1 * S, None, False, 20, ("at_risk", 1)),
        (T0, None, False, 20, ("overdue", 0)),  # at the deadline: overdue
        (T0 + 5 * S, None, False, 20, ("overdue", -5)),
        (T0 + 90 * S, None, True, 20, ("breached", -90)),  # the engine's final word
        (T0 + 5 * S, T0 - 3 * S, False, 20, ("met", -5)),
        (T0 + 5 * S, T0 + 2 * S, False, 20, ("late", -5)),
        (T0 - 50 * S, T0 - 60 * S, False, 20, ("met", 50)),
        (T0 - 10 * S, None, False, 0, ("ok", 10)),  # no lead: green up to the deadline
    ],
)
def test_stage_status(
    now: datetime, met_at: datetime | None, breached: bool, lead: float, expected: tuple[str, float]
) -> None:
    assert board.stage_status(T0, met_at, breached, now, lead) == expected


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["met", "ok", "ok"], "ok"),
        (["met", "at_risk", "ok"], "at_risk"),
        (["late", "overdue", "at_risk"], "overdue"),
        (["breached", "ok", "ok"], "overdue"),
        (["met", "met", "late"], "ok"),
    ],
)
def test_a_case_is_as_urgent_as_its_most_urgent_unmet_stage(statuses: list[str], expected: str) -> None:
    assert board.case_status([{"status": s} for s in statuses]) == expected


LEADS = {"accept": 20.0, "contact": 60.0, "arrive": 120.0}


def test_the_board_is_amber_on_the_sla_policys_leads() -> None:
    district = load_district()
    assert board.board_leads(district) == LEADS  # deploy/district/sla.json: issue 11's 20 / 60 / 120 s
    shorter = replace(district, sla=replace(district.sla, leads={**district.sla.leads, "accept": timedelta(seconds=5)}))
    assert board.board_leads(shorter)["accept"] == 5.0


def test_the_local_day_is_asia_shanghai() -> None:
    start, end = board.local_day_bounds(date(2026, 5, 12))
    assert datetime.fromtimestamp(start / 1000, UTC) == datetime(2026, 5, 11, 16, 0, tzinfo=UTC)
    assert end - start == 86_400_000


def test_open_cases_are_built_from_the_query_most_urgent_first() -> None:
    def at(offset_s: int) -> str:
        return (T0 + offset_s * S).isoformat().replace("+00:00", "Z")

    rows: list[list[Any]] = [
        # case, dispatched, category, street, grid, force, level, assignee, steps, 3 x (deadline, met), breached
        [
            "C-OK",
            at(-5),
            "noise.renovation",
            "330114005",
            "HZ-T03",
            "GRID_WORKER",
            "GRID",
            "GW-01",
            0,
            at(55),
            None,
            at(175),
            None,
            at(475),
            None,
            [],
        ],
        [
            "C-RED",
            at(-70),
            "dispute.market",
            "330114005",
            "",
            "MEDIATION",
            "STREET_POOL",
            "MD-02",
            1,
            at(-10),
            None,
            at(110),
            None,
            at(410),
            None,
            ["ACCEPT"],
        ],
        [
            "C-AMBER",
            at(-50),
            "dispute.market",
            "330114005",
            "HZ-T01",
            "MEDIATION",
            "GRID",
            None,
            0,
            at(10),
            None,
            at(130),
            None,
            at(430),
            None,
            [],
        ],
    ]
    seen: dict[str, Any] = {}

    def query(sql: str, params: Any) -> QueryResult:
        seen.update(params)
        return QueryResult([], rows)

    cases = board.open_cases(query, T0, LEADS, T0 - timedelta(hours=72))
    assert [(c["case_id"], c["status"]) for c in cases] == [
        ("C-RED", "overdue"),
        ("C-AMBER", "at_risk"),
        ("C-OK", "ok"),
    ]
    red = cases[0]
    assert [s["status"] for s in red["stages"]] == ["breached", "ok", "ok"]
    assert (red["assignee"], red["force"], red["grid"], red["escalations"]) == ("MD-02", "MEDIATION", "", 1)
    assert cases[1]["assignee"] == ""  # the command room's (no one assigned)
    assert seen["since"] == int((T0 - timedelta(hours=72)).timestamp() * 1000)


def test_compliance_shows_every_stage_before_the_days_first_case() -> None:
    """Just after local midnight nothing of today is decided yet: every stage is there, with no rate."""

    def rows(found: list[list[Any]]) -> board.Query:
        return lambda sql, params: QueryResult([], found)

    empty = board.compliance(rows([]), date(2026, 12, 1))
    assert [(s["stage"], s["met"], s["breached"], s["within"]) for s in empty] == [
        ("accept", 0, 0, None),
        ("contact", 0, 0, None),
        ("arrive", 0, 0, None),
    ]
    some = board.compliance(rows([["contact", 3, 1, 2, 0]]), date(2026, 12, 1))
    assert [(s["stage"], s["within"], s["open"]) for s in some] == [
        ("accept", None, 0),
        ("contact", 0.75, 2),
        ("arrive", None, 0),
    ]
