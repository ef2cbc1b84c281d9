"""The district simulator: a seeded, deterministic stream of a street's (or every street's) upstream events.
Pure: no clock, no I/O.

``generate(config, district)`` yields SimEvents in publish order: AlarmReceived on ``alarms`` and the field
lifecycle (InstructionAccepted, PartyContacted, ResponderArrived, MediationConcluded, CaseClosed) on
``case-events``, with re-deliveries, bounded disorder and broken messages mixed in as configured. The
worker derives AlarmTriaged and CaseDispatched itself, so they are never generated.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from streams.domain.district import District
from streams.simulator.arrivals import arrivals
from streams.simulator.cases import Case, CaseMaker, render
from streams.simulator.config import ALL_STREETS, SimConfig
from streams.simulator.events import SimEvent
from streams.simulator.imperfect import imperfect
from streams.simulator.stamps import DAY_MS
from streams.simulator.streets import merged
from streams.simulator.world import World

Pending = tuple[int, int, int, Case]  # (next step's time, case seq, step index, case)


def generate(config: SimConfig, district: District) -> Iterator[SimEvent]:
    """Every message of the run, in publish order. ``config.start`` must be set (see ``SimConfig.resolved``).
    With ``street_code = "all"`` the run covers every street of the district (streets.py)."""
    if config.street_code == ALL_STREETS:
        return imperfect(merged(config, district, originals), config)
    return imperfect(originals(config, district), config)


def originals(config: SimConfig, district: District) -> Iterator[SimEvent]:
    """Each event once, in event-time order, none at or after the end of the span plus the drain."""
    start = config.start_ms()
    world = World.build(district, config)
    end = start + int(config.days * DAY_MS)
    cutoff = end + int(config.drain_hours * 3_600_000)
    maker = CaseMaker(world, config, start)
    pending: list[Pending] = []
    for at_ms, hotspot in arrivals(config, start, end, world.hotspot is not None):
        yield from _due(pending, at_ms, cutoff)
        alarm, case = maker.open(at_ms, hotspot)
        yield SimEvent(at_ms, at_ms, "alarms", alarm["alarm_id"], "AlarmReceived", alarm)
        if case is not None and case.steps:
            heapq.heappush(pending, (case.steps[0][0], case.seq, 0, case))
    yield from _due(pending, cutoff, cutoff)


def _due(pending: list[Pending], until_ms: int, cutoff: int) -> Iterator[SimEvent]:
    """Field events up to ``until_ms``; a case's steps at or after the cutoff are never published."""
    while pending and pending[0][0] <= until_ms:
        at_ms, seq, index, case = heapq.heappop(pending)
        if at_ms >= cutoff:
            continue
        yield SimEvent(at_ms, at_ms, "case-events", case.case_id, case.steps[index][1], render(case, case.steps[index]))
        if index + 1 < len(case.steps):
            heapq.heappush(pending, (case.steps[index + 1][0], seq, index + 1, case))
