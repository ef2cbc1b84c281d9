"""What a run produced, read back without FINAL, and the invariants every scenario must keep.

A scenario's run is compared with a clean run of the same input: the same breaches, certain warnings (see
CERTAIN_ALERTS), dispatches, outcome aggregates and hotspot episodes; every input event once in ``v_events`` or
in the dead letters with its class, reason and origin; nothing doubled; each member's load equal to its open
cases; ``verify`` clean.
The assignee of a dispatch is left out of the comparison: it is the least-loaded member as the routing
partition's log stands, and two runs may interleave that log differently (the same log gives the same one).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from chaos.stack import REPO, Namespace
from chaos.workload import Poison, Workload

# table → the columns that identify one row: count() must equal uniqExact of them
IDENTITY = {
    "events": "kafka_topic, kafka_partition, kafka_offset",
    "v_events": "event_id",
    "triage": "event_id",
    "dispatches": "event_id",
    "sla_breaches": "event_id",
    "sla_alerts": "event_id",
    "reassignments": "event_id",
    "lifecycle": "event_id",
    "outcome_daily": "event_id",
    "hotspots": "event_id",
}


# The warnings whose stage no accepted event meets or cancels by the time the warning is about (its occurred_at
# less 1 ms): every run of the same input gives these, however its records were timed. A warning on a stage met
# in time by an event read late (within the lateness) depends on when that event was read, so it is left out.
CERTAIN_ALERTS = """
SELECT a.case_id, a.stage, a.type, a.deadline
FROM sla_alerts AS a
INNER JOIN cases AS c ON c.case_id = a.case_id
WHERE least(ifNull(multiIf(a.stage = 'ACCEPT', c.accepted_at, a.stage = 'CONTACT', c.contacted_at, c.arrived_at),
                   toDateTime64('2262-01-01', 3, 'UTC')),
            ifNull(c.concluded_at, toDateTime64('2262-01-01', 3, 'UTC')),
            ifNull(c.closed_at, toDateTime64('2262-01-01', 3, 'UTC'))) >= a.occurred_at
"""


@dataclass
class Snapshot:
    breaches: set[tuple[Any, ...]]
    alerts: set[tuple[Any, ...]]
    dispatches: dict[str, tuple[Any, ...]]
    reassignments: set[tuple[Any, ...]]
    outcomes: dict[str, tuple[Any, ...]]
    episodes: set[tuple[Any, ...]]
    event_ids: set[str]
    dead_letters: dict[str, tuple[str, str]]  # origin → (class, reason)
    doubled: list[str]
    one_dispatch_per_case: bool
    load: dict[str, int]
    open_cases: dict[str, int]
    load_partitions: set[int]
    verify: str

    @property
    def verify_clean(self) -> bool:
        return "0 difference(s) in total" in self.verify


def snapshot(ns: Namespace) -> Snapshot:
    """Read everything back; the namespace's database-holding worker must be running."""
    sql = ns.sql
    doubled = [t for t, cols in IDENTITY.items() if sql(f"SELECT count() = uniqExact({cols}) FROM {t}") != [[1]]]
    load, partitions = ns.load()
    open_cases = {
        f"{street}\t{member}": int(n)
        for street, member, n in sql(
            "SELECT street_code, current_assignee, count() FROM cases "
            "WHERE concluded_at IS NULL AND closed_at IS NULL AND current_assignee IS NOT NULL "
            "GROUP BY street_code, current_assignee"
        )
    }
    verify = subprocess.run(
        [sys.executable, "-m", "streams.cli", "verify"],
        env=ns.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return Snapshot(
        breaches={tuple(r) for r in sql("SELECT case_id, stage, deadline, sla_rule FROM sla_breaches")},
        alerts={tuple(r) for r in sql(CERTAIN_ALERTS)},
        dispatches={
            r[0]: tuple(r[1:])
            for r in sql(
                "SELECT case_id, street_code, grid_code, team, level, accept_by, contact_by, arrive_by, sla_rule "
                "FROM dispatches"
            )
        },
        reassignments={tuple(r) for r in sql("SELECT case_id, step, level FROM reassignments")},
        outcomes={
            r[0]: tuple(r[1:])
            for r in sql(
                "SELECT stats_key, concluded, success, no_action_needed, compensation, duration_sum_ms "
                "FROM v_outcome_daily"
            )
        },
        episodes={
            tuple(r) for r in sql("SELECT hotspot_id, started_at, peak, last_count, cooled_at FROM v_hotspot_history")
        },
        event_ids={r[0] for r in sql("SELECT event_id FROM v_events")},
        dead_letters={r[0]: (r[1], r[2]) for r in sql("SELECT origin, error_class, reason FROM v_deadletters")},
        doubled=doubled,
        one_dispatch_per_case=sql("SELECT count() = uniqExact(case_id) FROM dispatches") == [[1]],
        load=load,
        open_cases=open_cases,
        load_partitions=partitions,
        verify=verify.stdout + verify.stderr,
    )


@dataclass
class Expectation:
    """What the run was given: the input, its poison (with the origins they landed at), and its timings."""

    workload: Workload
    poison: list[tuple[Poison, str]] = field(default_factory=list)
    partitions: int = 4


def check(run: Snapshot, reference: Snapshot, expect: Expectation) -> dict[str, str | None]:
    """Invariant → None when it holds, else what differs."""
    out: dict[str, str | None] = {}
    missing = expect.workload.event_ids() - run.event_ids
    bad_poison = [
        f"{p.kind} at {origin}: {run.dead_letters.get(origin)}"
        for p, origin in expect.poison
        if p.expected is not None and (run.dead_letters.get(origin) or ("", ""))[0] != p.expected
    ]
    unreasoned = [o for o, (cls, reason) in run.dead_letters.items() if not cls or not reason]
    upstream = sum(1 for o in run.dead_letters if "/" in o and _topic_suffix(o) in ("alarms", "case-events"))
    expected_upstream = expect.workload.malformed + sum(
        1 for p, _ in expect.poison if p.expected is not None and p.topic in ("alarms", "case-events")
    )
    out["nothing lost"] = _first(
        [f"{len(missing)} input events neither in v_events nor dead-lettered"] if missing else [],
        bad_poison,
        [f"dead letters without class or reason: {unreasoned[:3]}"] if unreasoned else [],
        [f"{upstream} upstream dead letters, expected {expected_upstream}"] if upstream != expected_upstream else [],
    )
    out["nothing doubled"] = _first(
        [f"count() != uniqExact in {run.doubled}"] if run.doubled else [],
        [] if run.one_dispatch_per_case else ["a case dispatched twice"],
    )
    out["breaches"] = _diff(run.breaches, reference.breaches)
    out["alerts"] = _diff(run.alerts, reference.alerts)
    out["dispatches"] = _diff(set(run.dispatches.items()), set(reference.dispatches.items()))
    out["escalations"] = _diff(run.reassignments, reference.reassignments)
    out["outcomes"] = _diff(set(run.outcomes.items()), set(reference.outcomes.items()))
    out["hotspots"] = _diff(run.episodes, reference.episodes)
    out["load = open cases"] = (
        None
        if run.load == run.open_cases and run.load_partitions == set(range(expect.partitions))
        else f"load {_dict_diff(run.load, run.open_cases)}; partitions held {sorted(run.load_partitions)}"
    )
    out["verify"] = None if run.verify_clean else run.verify.strip().splitlines()[-1]
    return out


def _topic_suffix(origin: str) -> str:
    return origin.split("/", 1)[0].rsplit(".", 1)[-1]


def _first(*problems: list[str]) -> str | None:
    found = [p for group in problems for p in group]
    return "; ".join(found[:3]) if found else None


def _diff(got: set[Any], want: set[Any]) -> str | None:
    if got == want:
        return None
    extra, lost = got - want, want - got
    return f"{len(extra)} more, {len(lost)} fewer than the clean run (e.g. {sorted(map(str, extra or lost))[:2]})"


def _dict_diff(a: dict[str, int], b: dict[str, int]) -> str:
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, 0) != b.get(k, 0))
    return ", ".join(f"{k.replace(chr(9), '/')}: {a.get(k, 0)} vs {b.get(k, 0)} open" for k in keys[:4]) or "equal"
