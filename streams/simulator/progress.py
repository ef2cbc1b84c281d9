"""Progress through the simulated span, for the rich bar of long runs (reported at most a few times a second)."""

from __future__ import annotations

import time
from collections.abc import Callable

from streams.simulator.config import SimConfig
from streams.simulator.events import SimEvent
from streams.simulator.stamps import DAY_MS

Progress = Callable[[float, int], None]  # (share of the simulated span done, messages so far)
EVERY_S = 0.2


class SpanProgress:
    """Calls ``report`` with how far the run is, when EVERY_S has passed, and once at the end."""

    def __init__(self, config: SimConfig, report: Progress | None) -> None:
        self.start = config.start_ms()
        self.span = max(1, int((config.days + config.drain_hours / 24) * DAY_MS))
        self.report = report
        self.last = time.monotonic()

    def step(self, event: SimEvent, count: int) -> None:
        if self.report is None or count % 256:
            return
        now = time.monotonic()
        if now - self.last >= EVERY_S:
            self.last = now
            self.report(min(1.0, max(0.0, (event.publish_ms - self.start) / self.span)), count)

    def done(self, count: int) -> None:
        if self.report is not None:
            self.report(1.0, count)
