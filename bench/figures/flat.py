"""flat: does the cost of an input grow with what is already stored? CPU per message read over the first 10% of a
pre-filled backlog against the last 10%, for the agents alone, the projector alone and both together (the split
deployment), one run each on a fresh copy of the first ``flat_events`` messages of the input.

A term that scales with the stored data (a look-up on a growing table, a whole aggregate rewritten per update, an
index that keeps stale entries) makes the last 10% dearer than the first. The progress measure is each process's
own consumer group's committed offsets (the agents' or the projector's), read at every lag look (at most ``poll_s``
apart), with the process's CPU time read at the same looks; the 10% and 90% marks are interpolated between looks.
Messages read, not input events: the agents also read what they derive, and the share of derived messages is the
same at both ends of the input. In the split deployment the projector's tail follows the agents' output in small
batches, which costs more per read than its pass over the pre-filled input: compare it with the projector alone.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.figures.worker import DEPLOYMENTS, drop_database
from bench.machine import cpu_seconds
from bench.stats import headline, summary
from bench.workers import PREFILLED_ENV, deployment_envs, running, spawn, wait_caught_up, wait_ready
from bench.workload import delete_deployment, fresh_copy, prefix_of
from streams.settings import Settings

TARGET = 1.2  # CPU per message read, last 10% / first 10%
MODES = {"agents": ("agents",), "projector": ("projector",), "split": DEPLOYMENTS["split"]}


def _at(looks: list[tuple[int, float]], read: float) -> float:
    """CPU seconds when the groups had read ``read`` messages, interpolated between the two looks around it."""
    reads = [r for r, _ in looks]
    i = min(max(bisect_left(reads, read), 1), len(looks) - 1)
    (r0, c0), (r1, c1) = looks[i - 1], looks[i]
    return c0 if r1 == r0 else c0 + (c1 - c0) * (read - r0) / (r1 - r0)


def costs(looks: list[tuple[int, float]]) -> dict[str, Any]:
    """From (messages read, CPU seconds) at each look: µs of CPU per message read over the first and last 10%."""
    (r_start, c_start), (r_end, c_end) = looks[0], looks[-1]
    span = r_end - r_start
    if span <= 0:
        raise ValueError("the groups read nothing while watched")
    marks = [c_start, *(_at(looks, r_start + k / 10 * span) for k in range(1, 10)), c_end]
    deciles = [(b - a) / (span / 10) * 1e6 for a, b in pairwise(marks)]
    first, last = deciles[0], deciles[-1]
    return {
        "reads": span,
        "looks": len(looks),
        "cpu_us_per_read_first_10pct": round(first, 1),
        "cpu_us_per_read_last_10pct": round(last, 1),
        # The whole curve: a term that grows with the stored data climbs decile by decile; a change in the work per
        # read (the order in which the agents work through a pre-filled backlog) shows as a step.
        "cpu_us_per_read_by_decile": [round(d, 1) for d in deciles],
        "ratio": round(last / first, 3) if first > 0 else None,
    }


def one(ctx: Context, mode: str, records: list[Any]) -> dict[str, Any]:
    prefix = f"{ctx.base.topic_prefix}-f{mode[0]}"
    n = asyncio.run(fresh_copy(ctx.base, ctx.codec, records, prefix, ctx.sizes.partitions))
    roles = MODES[mode]
    envs = deployment_envs(ctx, prefix, f"flat-{mode}", roles, **PREFILLED_ENV)
    every = Settings.from_env(envs[0]).consumer_groups()
    group_of = {role: next(g for g in every if g.endswith("-projector") == (role == "projector")) for role in roles}
    with running([]) as workers:
        workers += [spawn(ctx, f"flat-{mode}-{role}", env) for role, env in zip(roles, envs, strict=True)]
        for w in workers:
            wait_ready(w)
        pids = {role: w.proc.pid for role, w in zip(roles, workers, strict=True)}
        looks: dict[str, list[tuple[int, float]]] = {role: [] for role in roles}
        rss: list[float] = []  # the processes' summed RSS at the first look and at lag 0

        def look(_: float, read: Mapping[str, int]) -> None:
            # Each process against its own group's reads: in the split deployment the projector races through the
            # pre-filled input while the agents are still early, so summed reads would mix two paces.
            for role, pid in pids.items():
                looks[role].append((read.get(group_of[role], 0), cpu_seconds(pid)))
            if not rss:
                rss.append(sum(w.rss_mb() for w in workers))

        groups = {group_of[role]: every[group_of[role]] for role in roles}
        wait_caught_up(ctx, groups, workers, timeout=n / 20 + 600, on_look=look)
        rss.append(sum(w.rss_mb() for w in workers))
    asyncio.run(delete_deployment(ctx.base, prefix))
    for env in envs:
        drop_database(Path(env["ALARMFLOW_VAR_DIR"]))
    by_role = {role: costs(looks[role]) for role in roles}
    ratios = [c["ratio"] for c in by_role.values() if c["ratio"] is not None]
    summary_line = ", ".join(
        f"{role} {c['cpu_us_per_read_first_10pct']} -> {c['cpu_us_per_read_last_10pct']} µs per read"
        for role, c in by_role.items()
    )
    ctx.log(f"flat {mode}: {n} messages; {summary_line}")
    return {
        "messages": n,
        "by_role": by_role,
        "ratio": max(ratios) if ratios else None,
        "rss_mb_first_look": rss[0],
        "rss_mb_last_look": rss[-1],
    }


def run(ctx: Context) -> dict[str, Any]:
    records = prefix_of(ctx.records, ctx.sizes.flat_events / max(len(ctx.records), 1))
    runs = {mode: one(ctx, mode, records) for mode in MODES}
    ratios = [r["ratio"] for r in runs.values() if r["ratio"] is not None]
    worst = max(ratios)
    return {
        "what": "CPU per message read, each process against its own consumer group's reads, last 10% of a "
        "pre-filled backlog / first 10%; agents alone, projector alone, both (split); one run each",
        "messages": len(records),
        "runs": runs,
        "worst_ratio": worst,
        "target": {"metric": "last 10% / first 10%", "op": "<=", "value": TARGET},
        "headline": headline("flat (worst of agents, projector, split)", "x first 10%", summary([worst], 3)),
    }
