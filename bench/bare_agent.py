"""``python -m bench.bare_agent``: what Faust's stream machinery alone costs per consumed message.

The worker's Faust app (``streams.app.faust_app``: same transport, consumer settings and event loop) with one agent
per input topic that takes batches exactly as the worker's agents do (``take_events`` with the worker's batch size
and window) and does nothing with them. Once the agents together have taken ``BENCH_BARE_MESSAGES`` messages it
writes ``{"messages": n, "cpu_s": s, "seconds": s}`` to the file ``BENCH_BARE_OUT`` names (mode's worker takes
stdout over for its log) and exits. CPU and wall time run from the
first batch to the last: start-up and the first fetch are left out, so the figure errs low, as a floor should.
The floor figure prices the agents' reads with it: a design that consumes through Faust agents cannot spend less
than this per message read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import mode.loop
from faust import Worker

from streams import logs
from streams.agents.wiring import raw_topic
from streams.app import faust_app
from streams.settings import Settings

INPUTS = ("alarms", "case-events")


def main() -> None:
    settings = Settings.from_env(os.environ)
    wanted = int(os.environ["BENCH_BARE_MESSAGES"])
    mode.loop.use(settings.event_loop)
    app = faust_app(settings)
    seen: dict[str, Any] = {"n": 0, "start": None}

    async def take(stream: Any) -> None:
        async for events in stream.take_events(settings.agent_batch_max, settings.agent_batch_within_ms / 1000):
            if seen["start"] is None:  # from the first batch on (see the module doc)
                seen["start"] = (time.process_time(), time.monotonic())
            seen["n"] += len(events)
            if seen["n"] >= wanted:
                cpu0, wall0 = seen["start"]
                result = {
                    "messages": seen["n"],
                    "cpu_s": time.process_time() - cpu0,
                    "seconds": time.monotonic() - wall0,
                }
                Path(os.environ["BENCH_BARE_OUT"]).write_text(json.dumps(result))
                os._exit(0)

    async def quiet() -> None:  # as the worker does once started
        logs.set_levels("warning")

    app.task(quiet)
    for suffix in INPUTS:
        app.agent(raw_topic(app, settings.topic(suffix)), name=f"bare-{suffix}")(take)
    Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
