"""The command room's live board: what it shows and how a stage's countdown is coloured. Pure.

The board reads ClickHouse through the worker's read-only path; ``snapshot`` takes that as a function, so the
page's data is built the same way in the worker and in tests. A stage is ``met`` once its event came (``late`` if
after the deadline), else ``ok`` (green), ``at_risk`` (amber: within the stage's lead of its deadline) or
``overdue`` (red: past it). Overdue is the wall clock's view for people; the final word is the SLA engine's breach,
decided from the log after the allowed lateness, which the board shows as ``breached``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from projections.query import QueryResult
from streams.domain.district import LEAD_STAGES, District
from streams.domain.outcomes import LOCAL_TZ

STAGES = LEAD_STAGES
OPEN_CASES_MAX = 300

Query = Callable[[str, Mapping[str, Any]], QueryResult]


def board_leads(district: District) -> Mapping[str, float]:
    """The SLA policy's per-stage leads in seconds: amber on the board when SlaAtRisk is due."""
    return {stage: district.sla.leads[stage].total_seconds() for stage in LEAD_STAGES}


def stage_status(
    deadline: datetime, met_at: datetime | None, breached: bool, now: datetime, lead_s: float
) -> tuple[str, float]:
    """The stage's colour class and the seconds left to its deadline (negative: overdue by that much)."""
    remaining = (deadline - now).total_seconds()
    if met_at is not None:
        return ("late" if met_at > deadline or breached else "met"), remaining
    if breached:
        return "breached", remaining
    if remaining <= 0:
        return "overdue", remaining
    if remaining <= lead_s:
        return "at_risk", remaining
    return "ok", remaining


_RANK = {"breached": 4, "overdue": 3, "at_risk": 2, "ok": 1, "late": 0, "met": 0}


def case_status(stages: Sequence[Mapping[str, Any]]) -> str:
    """A case is as urgent as its most urgent unmet stage; a case whose stages are all met is ``ok``."""
    worst = max(stages, key=lambda s: _RANK[s["status"]], default=None)
    if worst is None or _RANK[worst["status"]] == 0:
        return "ok"
    return "overdue" if worst["status"] == "breached" else str(worst["status"])


def local_day_bounds(day: date) -> tuple[int, int]:
    """The local day (Asia/Shanghai) as [start, end) in epoch milliseconds."""
    start = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
    return int(start.timestamp() * 1000), int((start + timedelta(days=1)).timestamp() * 1000)


OPEN_CASES = """
WITH
    d AS (
        SELECT case_id, occurred_at AS dispatched_at, category, street_code, grid_code, team, level, assignee_id,
               accept_by, contact_by, arrive_by
        FROM dispatches
        WHERE occurred_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
        ORDER BY occurred_at, event_id
        LIMIT 1 BY case_id
    ),
    f AS (
        SELECT case_id,
               minOrNullIf(occurred_at, type IN ('InstructionAccepted', 'PartyContacted', 'ResponderArrived'))
                   AS accepted_at,
               minOrNullIf(occurred_at, type IN ('PartyContacted', 'ResponderArrived')) AS contacted_at,
               minOrNullIf(occurred_at, type = 'ResponderArrived') AS arrived_at,
               toNullable(countIf(type IN ('MediationConcluded', 'CaseClosed'))) AS ended
        FROM v_lifecycle
        WHERE case_id GLOBAL IN (SELECT case_id FROM d)
        GROUP BY case_id
    ),
    r AS (
        SELECT case_id, toNullable(max(step)) AS steps,
               tupleElement(argMax(tuple(to_assignee, level), step), 1) AS last_assignee,
               toNullable(tupleElement(argMax(tuple(to_assignee, level), step), 2)) AS last_level
        FROM reassignments
        WHERE case_id GLOBAL IN (SELECT case_id FROM d)
        GROUP BY case_id
    ),
    b AS (
        SELECT case_id, groupUniqArray(stage) AS breached
        FROM sla_breaches
        WHERE case_id GLOBAL IN (SELECT case_id FROM d)
        GROUP BY case_id
    )
SELECT d.case_id, d.dispatched_at, d.category, d.street_code, ifNull(d.grid_code, ''), d.team,
       if(ifNull(r.steps, 0) > 0, ifNull(r.last_level, d.level), d.level),
       if(ifNull(r.steps, 0) > 0, r.last_assignee, d.assignee_id), ifNull(r.steps, 0),
       d.accept_by, f.accepted_at, d.contact_by, f.contacted_at, d.arrive_by, f.arrived_at, b.breached
FROM d
LEFT JOIN f ON f.case_id = d.case_id
LEFT JOIN r ON r.case_id = d.case_id
LEFT JOIN b ON b.case_id = d.case_id
WHERE ifNull(f.ended, 0) = 0
ORDER BY least(if(f.accepted_at IS NULL, d.accept_by, d.arrive_by + INTERVAL 1 DAY),
               if(f.contacted_at IS NULL, d.contact_by, d.arrive_by + INTERVAL 1 DAY),
               if(f.arrived_at IS NULL, d.arrive_by, d.arrive_by + INTERVAL 1 DAY)), d.case_id
LIMIT {limit:UInt32}
"""

BREACHES_TODAY = """
SELECT case_id, stage, deadline, team, ifNull(grid_code, ''), ifNull(assignee_id, '')
FROM sla_breaches
WHERE occurred_at >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
  AND occurred_at < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
ORDER BY occurred_at DESC, event_id
LIMIT 1 BY case_id, stage
"""

ESCALATIONS_TODAY = """
SELECT case_id, occurred_at, team, level, step, ifNull(from_assignee, ''), ifNull(to_assignee, ''), reason
FROM reassignments
WHERE occurred_at >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
  AND occurred_at < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
ORDER BY occurred_at DESC, event_id
LIMIT 1 BY event_id
LIMIT 30
"""

COMPLIANCE_TODAY = """
SELECT lower(stage), sum(met), sum(breached), sum(open), sum(cancelled)
FROM v_sla_compliance
WHERE local_day = toDate({day:String})
GROUP BY stage
ORDER BY indexOf(['ACCEPT', 'CONTACT', 'ARRIVE'], stage)
"""

DEADLETTERS = "SELECT error_class, source_topic, messages FROM v_deadletter_counts"
REDRIVES = "SELECT outcome, count() FROM v_deadletter_redrives GROUP BY outcome ORDER BY outcome"


BREACH_KEYS = ("case_id", "stage", "deadline", "force", "grid", "assignee")


def _at(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def open_cases(query: Query, now: datetime, leads: Mapping[str, float], since: datetime) -> list[dict[str, Any]]:
    """Open cases (dispatched since ``since``, neither concluded nor closed), most urgent first."""
    rows = query(OPEN_CASES, {"since": int(since.timestamp() * 1000), "limit": OPEN_CASES_MAX}).rows
    cases = []
    for row in rows:
        case_id, dispatched, category, street, grid, team, level, assignee, steps = row[:9]
        breached = {s.lower() for s in (row[15] or [])}
        stages = []
        for i, stage in enumerate(STAGES):
            deadline, met_at = _at(row[9 + 2 * i]), _at(row[10 + 2 * i])
            assert deadline is not None  # dispatches.*_by are not nullable
            status, remaining = stage_status(deadline, met_at, stage in breached, now, leads.get(stage, 0.0))
            left = math.floor(remaining)  # whole seconds, so a just-missed deadline reads −00:01, not 00:00
            stages.append({"stage": stage, "deadline": deadline.isoformat(), "status": status, "remaining_s": left})
        cases.append(
            {
                "case_id": case_id,
                "dispatched_at": dispatched,
                "category": category,
                "street": street,
                "grid": grid,
                "force": team,
                "level": level,
                "assignee": assignee or "",
                "escalations": steps,
                "stages": stages,
                "status": case_status(stages),
            }
        )
    order = {"overdue": 0, "at_risk": 1, "ok": 2}
    cases.sort(key=lambda c: order[c["status"]])
    return cases


def fast_part(query: Query, now: datetime, leads: Mapping[str, float], since: datetime) -> dict[str, Any]:
    """What changes from second to second: open cases, today's breaches and escalations, dead letters."""
    today = now.astimezone(LOCAL_TZ).date()
    start, end = local_day_bounds(today)
    cases = open_cases(query, now, leads, since)
    breaches = query(BREACHES_TODAY, {"start": start, "end": end}).rows
    escalations = query(ESCALATIONS_TODAY, {"start": start, "end": end}).rows
    letters = query(DEADLETTERS, {}).rows
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in ("ok", "at_risk", "overdue")}
    return {
        "now": now.isoformat(),
        "today": today.isoformat(),
        "leads": dict(leads),
        "cases": cases,
        "counts": {"open": len(cases), **counts, "capped": len(cases) >= OPEN_CASES_MAX},
        "breaches": [dict(zip(BREACH_KEYS, r, strict=True)) for r in breaches],
        "breaches_by_stage": {s: sum(1 for r in breaches if str(r[1]).lower() == s) for s in STAGES},
        "escalations": [
            dict(zip(("case_id", "at", "force", "level", "step", "from", "to", "reason"), r, strict=True))
            for r in escalations
        ],
        "deadletters": {
            "total": sum(int(r[2]) for r in letters),
            "by_class": [{"class": r[0], "topic": r[1], "messages": r[2]} for r in letters],
            "redrives": {str(r[0]): int(r[1]) for r in query(REDRIVES, {}).rows},
        },
    }


def compliance(query: Query, day: date) -> list[dict[str, Any]]:
    """Per stage, today so far: met / (met + breached), as in v_sla_by_stage; open and cancelled as counts. Every
    stage is there, with zeros and no rate before the day's first case (just after local midnight)."""
    found = {str(r[0]): r[1:] for r in query(COMPLIANCE_TODAY, {"day": day.isoformat()}).rows}
    out = []
    for stage in STAGES:
        met, breached, open_, cancelled = found.get(stage, (0, 0, 0, 0))
        decided = int(met) + int(breached)
        rate = None if decided == 0 else round(int(met) / decided, 4)
        out.append(
            {"stage": stage, "met": met, "breached": breached, "open": open_, "cancelled": cancelled, "within": rate}
        )
    return out


@dataclass(frozen=True)
class Lag:
    """Consumer lag at a glance: total records behind, and how many of them are not clock records."""

    total: int
    pending: int
    at: str
    error: str = ""
