"""Where the worker's time goes: a cProfile'd worker over a prefix of the input, summarised by package."""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
from typing import Any

from bench.context import Context
from bench.workers import PREFILLED_ENV, running, spawn, wait_caught_up, wait_ready, worker_env
from bench.workload import delete_deployment, fresh_copy, prefix_of
from streams.settings import Settings

# Own tottime by where the code lives: the buckets the suggestions talk about.
IDLE = "idle (waiting in epoll)"
BUCKETS = (
    ("<method 'poll' of 'select.epoll'", IDLE),
    ("<frozen importlib", "start-up (imports)"),
    ("marshal.loads", "start-up (imports)"),
    ("_imp.", "start-up (imports)"),
    ("builtins.compile", "start-up (imports)"),
    ("_chdb", "clickhouse-connect / chDB"),
    ("faust/", "faust (streams, tables, changelogs)"),
    ("mode/", "faust (streams, tables, changelogs)"),
    ("aiokafka/", "aiokafka (produce/fetch)"),
    ("asyncio/", "asyncio event loop"),
    ("_contextvars.Context", "asyncio event loop"),
    ("_asyncio.", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("<method 'send' of '_socket", "socket I/O"),
    ("<method 'recv", "socket I/O"),
    ("logging/", "logging"),
    ("json/", "json"),
    ("schemas/", "alarmflow schemas (codec, validation)"),
    ("fastavro", "fastavro"),
    ("streams/agents/state", "alarmflow engine state <-> changelog JSON"),
    ("streams/agents/", "alarmflow agents"),
    ("streams/domain/", "alarmflow domain"),
    ("streams/", "alarmflow streams (other)"),
    ("projections/", "alarmflow projections"),
    ("clickhouse_connect", "clickhouse-connect / chDB"),
    ("chdb", "clickhouse-connect / chDB"),
    ("pyarrow", "pyarrow"),
)


def _bucket(file: str, name: str) -> str:
    where = f"{file}:{name}" if file != "~" else name
    for needle, bucket in BUCKETS:
        if needle in where:
            return bucket
    return "other"


def summarise(path: str, top: int = 25) -> dict[str, Any]:
    stats = pstats.Stats(path)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    buckets: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, callers) in raw.items():
        for key, share in _attributed(file, name, tt, callers):
            buckets[key] = buckets.get(key, 0.0) + share
    idle = buckets.pop(IDLE, 0.0)
    busy = sum(buckets.values()) or 1.0
    rows = sorted(raw.items(), key=lambda kv: kv[1][3], reverse=True)
    mine = [
        {"function": f"{_ours(f)}:{ln}({n})", "calls": nc, "cum_s": round(ct, 2), "cum_share": round(ct / busy, 3)}
        for (f, ln, n), (_cc, nc, _tt, ct, _c) in rows
        if _ours(f) and nc >= 10
    ][:top]
    return {
        "busy_s": round(busy, 2),
        "idle_s": round(idle, 2),
        "share_of_busy_by_package": {k: round(v / busy, 3) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])},
        "top_alarmflow_cumulative": mine,
    }


def _attributed(file: str, name: str, tt: float, callers: dict[Any, Any]) -> list[tuple[str, float]]:
    """Unclassified own time (built-ins such as dict.get, isinstance, __new__; stdlib helpers such as
    dataclasses.replace or uuid) goes to the packages that called it, by the time spent from each caller."""
    key = _bucket(file, name)
    if key != "other" or not callers:
        return [(key, tt)]
    edges = {caller: stats[2] for caller, stats in callers.items()}
    total = sum(edges.values()) or 1.0
    return [(_bucket(f, n), tt * t / total) for (f, _l, n), t in edges.items()]


def _ours(file: str) -> str:
    """The project-relative path of one of our modules (the snapshot's copy), or ''."""
    for package in ("/streams/", "/schemas/", "/projections/"):
        if package in file and "site-packages" not in file:
            return package[1:] + file.rsplit(package, 1)[1]
    return ""


def run(ctx: Context) -> dict[str, Any]:
    records = prefix_of(ctx.records, ctx.sizes.profile_events / max(len(ctx.records), 1))
    prefix = f"{ctx.base.topic_prefix}-prof"
    asyncio.run(fresh_copy(ctx.base, ctx.codec, records, prefix, ctx.sizes.partitions))
    out = ctx.run_dir / "worker.prof"
    env = worker_env(ctx, prefix, prefix, ctx.run_dir / "profile", BENCH_PROFILE=str(out), **PREFILLED_ENV)
    with running([]) as workers:
        w = spawn(ctx, "profiled-worker", env, module="bench.profiled_worker")
        workers.append(w)
        ready = wait_ready(w)
        done = wait_caught_up(ctx, Settings.from_env(env).consumer_groups(), workers, timeout=3600)
        os.kill(w.proc.pid, signal.SIGHUP)
        w.proc.wait(timeout=60)
    asyncio.run(delete_deployment(ctx.base, prefix))
    summary = summarise(str(out))
    return {"messages": len(records), "seconds_under_profile": round(done - ready, 1), **summary}
