"""``python -m bench.sla_closed --cases N --samples K``: the pure case engine (as the unit tests drive it) fed N
closed cases in event-time order, printing one JSON line per sample: cases fed so far, cases the engine still
holds, and this process's RSS. State for closed cases must stay flat, not grow with N.

Each case: CaseDispatched, InstructionAccepted (+20 s), PartyContacted (+60 s), ResponderArrived (+200 s),
CaseClosed (+600 s); a case starts every ``--gap-s`` of event time (default 8.64 s: 10,000 cases a day), so the
engine forgets each settled case after its retention (24 h of event time).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.machine import rss_mb
from schemas.event import Event
from streams.domain.case_engine import CaseEngine
from streams.domain.engine import Record
from streams.domain.sla import SlaTiming
from streams.reference_files import load_district

T0 = datetime(2026, 5, 12, 0, 0, tzinfo=UTC)
STEPS = (("InstructionAccepted", 20), ("PartyContacted", 60), ("ResponderArrived", 200), ("CaseClosed", 600))


def dispatched(case: str, at: datetime) -> Event:
    s = timedelta(seconds=1)
    return Event(
        "CaseDispatched",
        {
            "event_id": f"{case}/d",
            "occurred_at": at,
            "source": "alarmflow.worker",
            "case_id": case,
            "alarm_id": case,
            "category": "noise.renovation",
            "priority": 3,
            "street_code": "330114005",
            "grid_code": "HZ-V05",
            "team": "GRID_WORKER",
            "level": "GRID",
            "assignee_id": "GW-10",
            "accept_by": at + 60 * s,
            "contact_by": at + 180 * s,
            "arrive_by": at + 480 * s,
            "rule": "dispatch.grid_member",
            "place": None,
        },
    )


EXTRA: dict[str, dict[str, Any]] = {
    "InstructionAccepted": {"worker_id": "GW-10"},
    "PartyContacted": {"worker_id": "GW-10", "method": "PHONE"},
    "ResponderArrived": {"worker_id": "GW-10", "lat": None, "lon": None},
    "CaseClosed": {"reported_to": ["sipingtai"]},
}


def field_event(kind: str, case: str, at: datetime) -> Event:
    fields = {"event_id": f"{case}/{kind}", "occurred_at": at, "source": "gridapp", "case_id": case}
    return Event(kind, {**fields, **EXTRA[kind]})


def events(n: int, gap: timedelta) -> Iterator[Event]:
    """Every case's events, merged in event-time order (as one partition would carry them)."""
    pending: list[tuple[datetime, int, int, str]] = []
    for i in range(n):
        at = T0 + i * gap
        while pending and pending[0][0] <= at:
            t, _, step, case = heapq.heappop(pending)
            yield field_event(STEPS[step][0], case, t)
        yield dispatched(f"C{i:07d}", at)
        for step, (_, after) in enumerate(STEPS):
            heapq.heappush(pending, (at + timedelta(seconds=after), i, step, f"C{i:07d}"))
    while pending:
        t, _, step, case = heapq.heappop(pending)
        yield field_event(STEPS[step][0], case, t)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, required=True)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--gap-s", type=float, default=8.64)
    args = parser.parse_args()
    engine = CaseEngine(load_district(), SlaTiming(retention=timedelta(hours=24)), 1, 1)
    engine.load(0, None, [])
    cases = engine.partitions[0].cases
    every = max(1, args.cases // args.samples)
    closed = 0
    start = time.perf_counter()
    for offset, event in enumerate(events(args.cases, timedelta(seconds=args.gap_s)), start=1):
        record = Record(event, "bench.case-events", 0, offset, event.fields["case_id"].encode(), b"", event.occurred_at)
        engine.on_record(record)
        engine.flush(0)
        if event.type == "CaseClosed":
            closed += 1
            if closed % every == 0:
                gc.collect()
                sample = {
                    "closed_cases": closed,
                    "cases_held": len(cases),
                    "rss_mb": rss_mb_self(),
                    "records": offset,
                    "seconds": round(time.perf_counter() - start, 1),
                }
                print(json.dumps(sample), flush=True)


def rss_mb_self() -> float:
    return rss_mb(os.getpid())


if __name__ == "__main__":
    main()
