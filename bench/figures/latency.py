"""latency: at fixed offered loads (``latency_shares`` of the worker figure's median throughput, 50% first), live:
- event published (broker ack) → its row is queryable (polling the worker's ClickHouse HTTP interface);
- ACCEPT deadline passed → SlaBreached published (its broker append time minus the deadline), with
  ALARMFLOW_SLA_LATENESS_MS=0 and a district whose accept target is a few seconds.
The worker figure's headline deployment (split: an agents and a projector process, by default), whose capacity sets
the load; an unmeasured warm-up window, then one measured window per repetition. The first share is the headline;
``curve`` has every share's percentiles, which show where the live worker stops keeping up.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.figures.worker import DEPLOYMENTS
from bench.live import Load, Probes, breach_latencies
from bench.stats import headline, percentile, summary
from bench.workers import Worker, deployment_envs, query, running, spawn, wait_caught_up, wait_ready
from bench.workload import create_topics, delete_deployment
from streams.kafka_io import producer, read_topic
from streams.settings import Settings

TARGET_SLA_P99_MS = 100.0
POLL_S = 0.05
FALLBACK_RATE = 50.0


def short_district(ctx: Context) -> Path:
    """The workload's district with accept / contact / arrive targets of A, 3A and 8A seconds."""
    target = ctx.run_dir / "district-latency"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ctx.district_dir, target)
    a = ctx.sizes.latency_accept_s
    policy = {"default": {"accept_s": a, "contact_s": 3 * a, "arrive_s": 8 * a}, "by_priority": {}, "by_category": {}}
    (target / "sla.json").write_text(json.dumps(policy))
    return target


async def _poll_rows(worker: Worker, probes: Probes, stop: asyncio.Event) -> None:
    sql = "SELECT event_id FROM events WHERE event_id IN {ids:Array(String)}"
    while not stop.is_set():
        waiting = [e for e in probes.row_acked if e not in probes.row_seen][:500]
        if waiting:
            rows = await asyncio.to_thread(query, worker, sql, {"ids": waiting})
            seen = time.time()
            for (event_id,) in rows:
                probes.row_seen.setdefault(str(event_id), seen)
        await asyncio.sleep(POLL_S)


async def _window(ctx: Context, load: Load, worker: Worker, probes: Probes) -> None:
    s = ctx.sizes
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll_rows(worker, probes, stop))
    try:
        await load.offer(
            s.latency_window_s, probes, sla_until=s.latency_window_s - s.latency_accept_s - 3, sla_every=0.2
        )
        deadline = time.monotonic() + s.latency_grace_s
        while time.monotonic() < deadline and len(probes.row_seen) < len(probes.row_acked):
            await asyncio.sleep(POLL_S)
    finally:
        stop.set()
        await poller


async def _breaches(ctx: Context, settings: Settings, cases: set[str]) -> dict[str, float]:
    deadline = time.monotonic() + ctx.sizes.latency_grace_s
    while True:
        messages = [m async for m in read_topic(settings, settings.topic("sla-breaches"), idle_ms=500)]
        found = breach_latencies(ctx.codec, messages, cases)
        if len(found) == len(cases) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(1.0)


async def _measure(ctx: Context, settings: Settings, worker: Worker, rate: float) -> list[dict[str, Any]]:
    kafka = producer(settings)
    await kafka.start()
    try:
        load = Load(settings, ctx.codec, kafka, rate, tag="warm", workload=ctx.workload)
        await load.offer(min(10.0, ctx.sizes.latency_window_s), Probes(), sla_until=0, sla_every=1)
        windows = []
        for i in range(ctx.sizes.repetitions):
            load.tag = f"w{i}"
            probes = Probes()
            started = time.monotonic()
            await _window(ctx, load, worker, probes)
            sla = await _breaches(ctx, settings, probes.sla)
            windows.append(_window_result(probes, sla, time.monotonic() - started))
            ctx.log(f"latency {i + 1}/{ctx.sizes.repetitions}: {windows[-1]['summary']}")
        return windows
    finally:
        await kafka.stop()


def _window_result(probes: Probes, sla: dict[str, float], seconds: float) -> dict[str, Any]:
    rows = [(probes.row_seen[e] - t) * 1000 for e, t in probes.row_acked.items() if e in probes.row_seen]
    sla_ms = list(sla.values())
    result: dict[str, Any] = {
        "sent": probes.sent,
        "row_probes": len(probes.row_acked),
        "row_missed": len(probes.row_acked) - len(rows),
        "sla_probes": len(probes.sla),
        "sla_missed": len(probes.sla) - len(sla_ms),
        "queryable_ms": rows,
        "sla_ms": sla_ms,
    }
    result["summary"] = {
        k: round(percentile(v, q), 1) if v else None
        for k, v, q in (("q50", rows, 50), ("q99", rows, 99), ("s50", sla_ms, 50), ("s99", sla_ms, 99))
    }
    return result


def _stats(windows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    pooled = [x for w in windows for x in w[key]]
    per = [w[key] for w in windows if w[key]]
    if not per:
        return {"samples": 0}
    return {
        "p50": summary([percentile(v, 50) for v in per], 1),
        "p99": summary([percentile(v, 99) for v in per], 1),
        "pooled": {
            "samples": len(pooled),
            "p50": round(percentile(pooled, 50), 1),
            "p99": round(percentile(pooled, 99), 1),
            "max": round(max(pooled), 1),
        },
    }


def _point(ctx: Context, rate: float, label: str) -> dict[str, Any]:
    """One offered load on a fresh deployment of the worker figure's headline kind: its windows, summarised."""
    prefix = f"{ctx.base.topic_prefix}-{label}"
    settings = replace(ctx.base, topic_prefix=prefix)
    asyncio.run(create_topics(settings, ctx.codec, ctx.sizes.partitions))
    deployment = ctx.results.get("worker", {}).get("deployment", "split")
    roles = DEPLOYMENTS[deployment]
    district = short_district(ctx)
    envs = deployment_envs(
        ctx, prefix, label, roles, ALARMFLOW_SLA_LATENESS_MS="0", ALARMFLOW_DISTRICT_DIR=str(district)
    )
    first = Settings.from_env(envs[0])
    with running([]) as workers:
        workers += [spawn(ctx, f"{label}-{role}", e) for role, e in zip(roles, envs, strict=True)]
        for w in workers:
            wait_ready(w)
        database = next(w for w in workers if w.settings.role in ("all", "projector"))  # it serves the queries
        windows = asyncio.run(_measure(ctx, settings, database, rate))
        wait_caught_up(ctx, first.consumer_groups(), workers, timeout=300)
    asyncio.run(delete_deployment(ctx.base, prefix))
    return {
        "deployment": deployment,
        "offered_events_per_s": round(rate, 1),
        "tick_interval_ms": first.tick_interval_ms,
        "queryable_ms": _stats(windows, "queryable_ms"),
        "sla_ms": _stats(windows, "sla_ms"),
        "windows": [{k: v for k, v in w.items() if not k.endswith("_ms")} for w in windows],
    }


def _curve_entry(share: float, point: dict[str, Any]) -> dict[str, Any]:
    def p(key: str, q: str) -> float | None:
        return point[key].get(q, {}).get("median")

    sla_p50 = [w["summary"]["s50"] for w in point["windows"] if w["summary"].get("s50") is not None]
    return {
        "share_of_worker_median": share,
        "offered_events_per_s": point["offered_events_per_s"],
        "queryable_p50_ms": p("queryable_ms", "p50"),
        "queryable_p99_ms": p("queryable_ms", "p99"),
        "sla_p50_ms": p("sla_ms", "p50"),
        "sla_p99_ms": p("sla_ms", "p99"),
        "sla_p50_per_window_ms": sla_p50,
        "probes_missed": sum(w["row_missed"] + w["sla_missed"] for w in point["windows"]),
    }


def run(ctx: Context) -> dict[str, Any]:
    worker_result = ctx.results.get("worker", {}).get("throughput")
    capacity = worker_result["median"] if worker_result else 2 * FALLBACK_RATE
    shares = [float(x) for x in ctx.sizes.latency_shares.split(",") if x.strip()] or [0.5]
    points = [_point(ctx, share * capacity, f"lat{i}") for i, share in enumerate(shares)]
    head, sla = points[0], points[0]["sla_ms"]
    out = {
        "what": f"live load at {shares[0]:g} x the worker figure's median (then at each further share, each on a fresh "
        "deployment); published = broker ack of the producer; "
        f"rows polled every {POLL_S * 1000:.0f} ms through the ClickHouse HTTP port; "
        "SLA = SlaBreached append time - accept deadline",
        "deployment": head["deployment"],
        "offered_events_per_s": head["offered_events_per_s"],
        "offered_from": "worker median" if worker_result else f"fallback capacity {2 * FALLBACK_RATE}/s",
        "settings": {
            "ALARMFLOW_SLA_LATENESS_MS": 0,
            "accept_s": ctx.sizes.latency_accept_s,
            "tick_interval_ms": head["tick_interval_ms"],
        },
        "window_s": ctx.sizes.latency_window_s,
        "queryable_ms": head["queryable_ms"],
        "sla_ms": sla,
        "windows": head["windows"],
        "curve": [_curve_entry(share, point) for share, point in zip(shares, points, strict=True)],
        "target": {"metric": "SLA detection p99 ms", "op": "<=", "value": TARGET_SLA_P99_MS},
    }
    if "p99" in sla:
        out["headline"] = headline("latency (SLA p99)", "ms", sla["p99"])
    else:
        out["error"] = "no ACCEPT breach was observed for any SLA probe"
    return out
