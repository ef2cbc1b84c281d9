"""memory: what state costs.

- open cases: the worker's RSS (VmRSS of the worker process, which also holds the embedded ClickHouse) when
  it is ready, and at lag 0 after ``memory_open_cases`` dispatchable non-police alarms that nobody accepts or
  closes. The allowed lateness is set to 7 days so that no deadline is decided during the run: the cases stay
  open without each adding five derived events (breaches, escalations) and minutes of run time.
- closed cases: every engine (triage, streets, cases, outcomes) on the pure topology, in its own process, fed
  ``memory_closed_cases`` closed cases; its RSS and the cases it holds, sampled along the way, should stay flat
  once the first cases pass their retention (ALARMFLOW_RETENTION_H, 72 h of event time; 10,000 cases a day).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

from bench.context import Context
from bench.stats import headline, summary
from bench.workers import Worker, query, running, spawn, wait_caught_up, wait_ready, worker_env
from bench.workload import create_topics, delete_deployment, publish, upstream
from streams.reference_files import load_district
from streams.settings import Settings
from streams.simulator.events import Delivery, SimEvent

WEEK_MS = 7 * 24 * 3600 * 1000


def open_alarms(n: int) -> Iterator[SimEvent]:
    """Simulated non-police 110 alarms whose category the district dispatches; their field events are left out."""
    district = load_district()

    def dispatchable(e: SimEvent) -> bool:
        if e.type != "AlarmReceived" or e.delivery is not Delivery.ORIGINAL or not isinstance(e.value, dict):
            return False
        category = district.category(str(e.value["category"]))
        return (
            e.value["police_matter"] == "NON_POLICE"
            and e.value["priority"] != 1
            and category is not None
            and category.disposition.value == "NON_POLICE"
        )

    return islice(filter(dispatchable, upstream(100 * n + 1000, rate_per_day=n, seed=3)), n)


def _sample_peak(worker: Worker, stop: threading.Event, peak: list[float]) -> None:
    while not stop.wait(1.0):
        peak[0] = max(peak[0], worker.rss_mb())


def open_cases(ctx: Context) -> dict[str, Any]:
    n = ctx.sizes.memory_open_cases
    prefix = f"{ctx.base.topic_prefix}-mem"
    settings = replace(ctx.base, topic_prefix=prefix)
    asyncio.run(create_topics(settings, ctx.codec, ctx.sizes.partitions))
    published = asyncio.run(publish(settings, ctx.codec, open_alarms(n), lambda k: None))
    env = worker_env(ctx, prefix, prefix, ctx.run_dir / "memory", ALARMFLOW_SLA_LATENESS_MS=str(WEEK_MS))
    stop, peak = threading.Event(), [0.0]
    with running([]) as workers:
        w = spawn(ctx, "memory-worker", env)
        workers.append(w)
        wait_ready(w)
        ready_mb = w.rss_mb()
        sampler = threading.Thread(target=_sample_peak, args=(w, stop, peak), daemon=True)
        sampler.start()
        wait_caught_up(ctx, Settings.from_env(env).consumer_groups(), workers, timeout=n / 5 + 600)
        stop.set()
        sampler.join()
        open_mb = w.rss_mb()
        dispatched = int(query(w, "SELECT uniqExact(case_id) FROM dispatches")[0][0])  # type: ignore[call-overload]
    asyncio.run(delete_deployment(ctx.base, prefix))
    ctx.log(f"memory: {dispatched} open cases, worker RSS {ready_mb:.0f} -> {open_mb:.0f} MB")
    per_case_mb = (open_mb - ready_mb) / max(dispatched, 1)
    target = ctx.sizes.memory_open_target
    return {
        "alarms": published,
        "open_cases": dispatched,
        "rss_ready_mb": ready_mb,
        "rss_open_mb": open_mb,
        "rss_peak_mb": max(peak[0], open_mb),
        "kb_per_open_case": round(per_case_mb * 1024, 2),
        f"rss_projected_mb_at_{target}": round(ready_mb + per_case_mb * target, 0),
        "projection": f"linear from ready to {dispatched} open cases; measured, not run, at {target}",
    }


def closed_cases(ctx: Context) -> dict[str, Any]:
    n = ctx.sizes.memory_closed_cases
    gap = 86_400 / ctx.sizes.memory_closed_per_day
    result = subprocess.run(
        [sys.executable, "-m", "bench.closed_cases", "--cases", str(n), "--samples", "20", "--gap-s", str(gap)],
        cwd=ctx.code_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    samples = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    half = samples[len(samples) // 2]
    last = samples[-1]
    return {
        "closed_cases": last["closed_cases"],
        "cases_per_day": ctx.sizes.memory_closed_per_day,
        "samples": samples,
        "cases_held_max": max(s["cases_held"] for s in samples),
        "cases_held_at_end": last["cases_held"],
        "rss_mb_at_half": half["rss_mb"],
        "rss_mb_at_end": last["rss_mb"],
        "rss_growth_second_half_mb": round(last["rss_mb"] - half["rss_mb"], 1),
    }


def run(ctx: Context) -> dict[str, Any]:
    opened = open_cases(ctx)
    closed = closed_cases(ctx)
    return {
        "what": "open: worker (role all, incl. embedded ClickHouse) VmRSS at ready and at lag 0 after N open cases "
        "(lateness 7 d, so nothing is decided); closed: every engine on the pure topology "
        "in its own process, fed N closed cases (RSS and what each engine holds sampled 20 times)",
        "open": opened,
        "closed": closed,
        # One run: 100k open cases take minutes through the whole pipeline; the closed-case part is its own series.
        "headline": headline("memory (worker RSS, open cases)", "MB", summary([opened["rss_open_mb"]], 1)),
    }
