"""scale: the stream agents' throughput with 2 agent workers against 1, on an input with more partitions.

The embedded engine lets one process open a database path, so ClickHouse does not scale by adding workers
here (with a server it would, through more projectors). What scales over partitions is the agents: every
worker runs with ALARMFLOW_ROLE=agents, no projector runs, and the figure is the agents' consumer group
(app id) from all workers ready to lag 0. Its input is a prefix of the pre-published input, copied with the
same keys into a topic of ``scale_partitions`` partitions (so the default partitioner spreads it again).

The workers start on empty topics and the copy begins once their group is Stable with every member assigned:
a rebalance while agents are busy stalled the group for about a minute in trials (Faust waits for in-flight
messages), which would measure the join, not the agents. The clock runs from the start of the copy (a few
seconds at most) to the first look at which the group's lag is no more than it was while the workers were idle
(``workers.idle_lag``: their own clock ticks, committed on each worker's phase, keep it above 0 at most looks).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from bench.context import Context
from bench.machine import cpu_seconds
from bench.stats import headline, summary
from bench.workers import (
    PREFILLED_ENV,
    BenchError,
    Worker,
    idle_lag,
    running,
    spawn,
    stop,
    wait_caught_up,
    wait_ready,
    worker_env,
)
from bench.workload import copy, create_topics, delete_deployment, group_state, prefix_of
from streams.settings import Settings

REBALANCES = "alarmflow_faust_rebalances_total"


def one(ctx: Context, tag: str, n_workers: int, records: list[Any]) -> tuple[float, float, int, int]:
    """(input events/s, CPU seconds all workers used, rebalances the workers saw while measured, their idle lag)
    for one run."""
    p = ctx.sizes.scale_partitions
    prefix = f"{ctx.base.topic_prefix}-s{tag}"
    settings = replace(ctx.base, topic_prefix=prefix)
    asyncio.run(create_topics(settings, ctx.codec, p))
    envs = [
        worker_env(
            ctx,
            prefix,
            prefix,
            ctx.run_dir / f"scale-{tag}-{i}",
            ALARMFLOW_ROLE="agents",
            ALARMFLOW_PARTITIONS=str(p),
            **PREFILLED_ENV,
        )
        for i in range(n_workers)
    ]
    with running([]) as spawned:
        workers: list[Worker] = []
        for attempt in ("first", "measured"):
            # The first start creates the deployment's table changelogs. A consumer that fetched their metadata
            # before their leaders were elected sees 0 partitions for minutes, and every table write then raises
            # PartitionsMismatch (seen with 8 partitions); the measured start finds them in place.
            for w in workers:
                stop(w)
            if workers:
                wait_group(ctx, settings, prefix, ("Empty", "Dead"), workers)
            workers = [spawn(ctx, f"scale-{tag}-{i}-{attempt}", env) for i, env in enumerate(envs)]
            spawned.extend(workers)
            for w in workers:
                wait_ready(w)
            wait_group(ctx, settings, prefix, ("Stable",), workers)
        group = {prefix: workers[0].settings.consumer_groups()[prefix]}
        idle = idle_lag(ctx, group)
        start, cpu0 = time.monotonic(), sum(cpu_seconds(w.proc.pid) for w in workers)
        rebalances0 = sum(w.metric(REBALANCES) for w in workers)
        asyncio.run(copy(ctx.base, records, prefix, by_key=True))
        done = wait_caught_up(ctx, group, workers, timeout=len(records) / 10 + 600, idle=idle)
        cpu = sum(cpu_seconds(w.proc.pid) for w in workers) - cpu0
        rebalances = int(sum(w.metric(REBALANCES) for w in workers) - rebalances0)
    asyncio.run(delete_deployment(ctx.base, prefix))
    rate = len(records) / (done - start)
    ctx.log(
        f"scale {tag}: {n_workers} agent worker(s), {len(records)} messages, {rate:.0f}/s, {cpu:.1f} CPU s, "
        f"{rebalances} rebalance(s) while measured, caught up at lag <= {idle} (their lag when idle)"
    )
    return rate, cpu, rebalances, idle


def wait_group(ctx: Context, settings: Settings, group: str, states: tuple[str, ...], workers: list[Worker]) -> None:
    """Until the group is in one of ``states``: Stable with every running worker a member, or Empty once they left
    (a killed member stays until its session times out, and would trigger a rebalance mid-measurement)."""
    members = len(workers) if "Stable" in states else 0
    deadline = time.monotonic() + 120
    while (seen := asyncio.run(group_state(settings, group))) not in [(s, members) for s in states]:
        if time.monotonic() > deadline:
            raise BenchError(f"group {group} is {seen}, not {states} with {members} members:\n{workers[0].tail()}")
        time.sleep(0.5)


def run(ctx: Context) -> dict[str, Any]:
    records = prefix_of(ctx.records, ctx.sizes.scale_events / max(len(ctx.records), 1))
    one_w: list[float] = []
    two_w: list[float] = []
    one_cpu: list[float] = []
    two_cpu: list[float] = []
    rebalances: dict[int, list[int]] = {1: [], 2: []}
    idle: dict[int, list[int]] = {1: [], 2: []}
    for rep in range(ctx.sizes.repetitions):
        for n, rates, cpus in ((1, one_w, one_cpu), (2, two_w, two_cpu)):
            rate, cpu, seen, lag = one(ctx, f"{rep}x{n}", n, records)
            rates.append(rate)
            cpus.append(cpu)
            rebalances[n].append(seen)
            idle[n].append(lag)
    ratio = summary([b / a for a, b in zip(one_w, two_w, strict=True)])
    return {
        "what": "agents only (ALARMFLOW_ROLE=agents, no projector: one process per chDB path), app-id group lag "
        "to 0, 1 vs 2 worker processes on the same machine",
        "messages": len(records),
        "partitions": ctx.sizes.scale_partitions,
        "one_worker": summary(one_w, 0),
        "two_workers": summary(two_w, 0),
        "cpu_seconds_one_worker": summary(one_cpu, 1),
        "cpu_seconds_two_workers": summary(two_cpu, 1),
        "rebalances_while_measured": {"one_worker": rebalances[1], "two_workers": rebalances[2]},
        "idle_lag": {"one_worker": idle[1], "two_workers": idle[2]},
        "note": "2 worker processes share 2 cores with the broker (no standby replicas: each reads only its own "
        "partitions' changelogs); a rebalance while measured (alarmflow_faust_rebalances_total, scraped before and "
        "after) makes both workers stop, reload their partitions' state and read again; caught up: the group's lag at "
        "most its idle lag (idle_lag, measured before the input: the workers' own clock ticks and announcements, "
        "committed once a second on each worker's own phase)",
        "ratio": ratio,
        "headline": headline("scale", "x one worker", ratio),
    }
