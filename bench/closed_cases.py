"""``python -m bench.closed_cases --cases N --samples K``: every engine (triage, streets, cases, outcomes), in one
process on the pure topology (chaos.model), fed N closed cases in time order, printing one JSON line per sample:
cases fed so far, what each engine still holds, and this process's RSS. Once the first cases pass the retention,
every count and the RSS must stay flat, not grow with N.

Each case: a located non-police alarm (one of a few places, so spots form and cool), then InstructionAccepted
(+20 s), PartyContacted (+60 s), ResponderArrived (+200 s), MediationConcluded (+600 s) and CaseClosed (+660 s);
a case starts every ``--gap-s`` of event time (default 8.64 s: 10,000 cases a day).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.machine import rss_mb
from chaos.model import Model
from schemas.event import Event
from streams.domain.hotspots import HotspotPolicy
from streams.domain.sla import SlaTiming
from streams.reference_files import load_district, load_hotspot_policy

T0 = datetime(2026, 5, 12, 0, 0, tzinfo=UTC)
STEPS = (
    ("InstructionAccepted", 20),
    ("PartyContacted", 60),
    ("ResponderArrived", 200),
    ("MediationConcluded", 600),
    ("CaseClosed", 660),
)
PLACES = ("云上澜苑 3幢", "河庄农贸市场", "江东花园 2幢", "某路 {n}号")
EXTRA: dict[str, dict[str, Any]] = {
    "InstructionAccepted": {"worker_id": "GW-10"},
    "PartyContacted": {"worker_id": "GW-10", "method": "PHONE"},
    "ResponderArrived": {"worker_id": "GW-10", "lat": None, "lon": None},
    "MediationConcluded": {
        "worker_id": "GW-10",
        "outcome": "RESOLVED",
        "compensation": Decimal("10.00"),
        "summary": "",
    },
    "CaseClosed": {"reported_to": ["sipingtai"]},
}


def _id(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def alarm(i: int, at: datetime) -> Event:
    return Event(
        "AlarmReceived",
        {
            "event_id": _id("alarm", i),
            "occurred_at": at,
            "source": "bench",
            "alarm_id": f"C{i:07d}",
            "channel": "CALL_110",
            "category": "noise.renovation" if i % 3 else "dispute.market",
            "police_matter": "NON_POLICE",
            "priority": 3,
            "location": {
                "address": PLACES[i % 4].format(n=i),
                "lat": None,
                "lon": None,
                "street_code": "330114005",
                "grid_code": "HZ-T03",
            },
            "caller_phone": None,
            "caller_language": None,
            "description": "",
        },
    )


def field(kind: str, i: int, at: datetime) -> Event:
    fields = {"event_id": _id(kind, i), "occurred_at": at, "source": "bench", "case_id": f"C{i:07d}"}
    return Event(kind, {**fields, **EXTRA[kind]})


def published(n: int, gap: timedelta) -> Iterator[tuple[Event, datetime]]:
    """Every case's events, merged in time order, each published at its own time."""
    pending: list[tuple[datetime, int, int]] = []
    for i in range(n):
        at = T0 + i * gap
        while pending and pending[0][0] <= at:
            t, case, step = heapq.heappop(pending)
            yield field(STEPS[step][0], case, t), t
        yield alarm(i, at), at
        for step, (_, after) in enumerate(STEPS):
            heapq.heappush(pending, (at + timedelta(seconds=after), i, step))
    while pending:
        t, case, step = heapq.heappop(pending)
        yield field(STEPS[step][0], case, t), t


def held(model: Model) -> dict[str, int]:
    """What each engine holds in memory now."""
    triage = model.engines["alarms"].partitions[0]  # type: ignore[attr-defined]
    streets = model.engines["routing"].partitions[0]  # type: ignore[attr-defined]
    cases = model.engines["case-events"].partitions[0]  # type: ignore[attr-defined]
    outcomes = model.engines["outcomes"].partitions[0]  # type: ignore[attr-defined]
    kinds = {"h/": 0, "s/": 0, "q/": 0}
    for key in streets.entries:
        kinds[key[:2]] += 1
    return {
        "alarms_seen": len(triage.seen),
        "dispatch_holders": kinds["h/"],
        "hotspot_spots": kinds["s/"],
        "hotspot_pending": kinds["q/"],
        "cases_held": len(cases.cases),
        "case_agenda": len(cases.due),
        "daily_aggregates": len(outcomes.aggregates),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, required=True)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--gap-s", type=float, default=8.64)
    args = parser.parse_args()
    policy: HotspotPolicy = load_hotspot_policy()
    # A tick a minute: the cases' own events move time; ticks only bridge the quiet between them.
    model = Model(load_district(), SlaTiming(), policy, frozenset({"RESOLVED"}), tick=timedelta(minutes=1))
    every = max(1, args.cases // args.samples)
    closed = 0
    start = time.perf_counter()
    gap = timedelta(seconds=args.gap_s)
    for event, at in published(args.cases, gap):
        model.live([(event, at)])
        if event.type != "CaseClosed":
            continue
        closed += 1
        model.decisions.published.clear()  # the outputs are not what is measured
        if closed % every == 0:
            gc.collect()
            sample = {"closed_cases": closed, **held(model), "rss_mb": rss_mb(os.getpid())}
            sample["seconds"] = round(time.perf_counter() - start, 1)
            print(json.dumps(sample), flush=True)


if __name__ == "__main__":
    main()
