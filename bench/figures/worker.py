"""worker: the full pipeline (``python -m streams.cli worker``: triage, routing, SLA, outcomes, projection with
offsets committed after the ClickHouse write) over a pre-filled input, from start-ready to lag 0 on every
consumer group of the worker.

Deployments (``--size worker_deployments=…``, comma-separated, the first is the headline): ``single`` is one
process of role ``all``; ``split`` is one ``agents`` and one ``projector`` process, so the ClickHouse writer has
a core of its own. CPU and RSS are summed over the deployment's processes. With more than one, the
repetitions alternate between them and each other deployment is reported as a ratio to the first.

Input: the worker's agents append their derived events (AlarmTriaged, CaseDispatched, CaseReassigned, ticks)
to ``<prefix>.case-events``, one of its two input topics, and Settings.topic() gives inputs and outputs one
prefix. Repetitions sharing the input topic would therefore each read the earlier repetitions' derived events
too. So each repetition gets a fresh prefix (fresh app id, consumer groups and ClickHouse path) holding a
byte-for-byte copy of the pre-published input (same keys, values and partitions), made outside the timed
region. A copy rather than a re-publish: identical bytes for every repetition and no re-encoding.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from bench.context import Context, Record
from bench.machine import cpu_seconds
from bench.stats import headline, summary
from bench.workers import PREFILLED_ENV, deployment_envs, running, spawn, wait_caught_up, wait_ready
from bench.workload import delete_deployment, deployment_sizes, fresh_copy, prefix_of
from streams.kafka_local import BrokerPaths
from streams.settings import Settings

TARGET = 0.5  # worker events/s / raw events/s
DEPLOYMENTS = {"single": ("all",), "split": ("agents", "projector")}  # the processes, by role


def broker_pid(ctx: Context) -> int | None:
    """The local broker's pid (for its CPU time), if this machine runs it."""
    try:
        pid = int(BrokerPaths(ctx.base.kafka_home.resolve()).pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def one(ctx: Context, index: int, records: list[Record], deployment: str = "single") -> dict[str, Any]:
    prefix = f"{ctx.base.topic_prefix}-w{index}{deployment[0]}"
    n = asyncio.run(fresh_copy(ctx.base, ctx.codec, records, prefix, ctx.sizes.partitions))
    roles = DEPLOYMENTS[deployment]
    envs = deployment_envs(ctx, prefix, f"worker-{index}", roles, **PREFILLED_ENV)
    groups = Settings.from_env(envs[0]).consumer_groups()
    broker = broker_pid(ctx)
    with running([]) as workers:
        workers += [spawn(ctx, f"worker-{index}-{role}", env) for role, env in zip(roles, envs, strict=True)]
        ready = max(wait_ready(w) for w in workers)
        pids = [w.proc.pid for w in workers]
        cpu0, broker0 = [cpu_seconds(p) for p in pids], cpu_seconds(broker) if broker else 0.0
        done = wait_caught_up(ctx, groups, workers, timeout=n / 20 + 600)
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
        broker_cpu = (cpu_seconds(broker) - broker0) if broker else None
        rss = sum(w.rss_mb() for w in workers)
    written = asyncio.run(deployment_sizes(ctx.base, prefix))
    asyncio.run(delete_deployment(ctx.base, prefix))
    for env in envs:
        drop_database(Path(env["ALARMFLOW_VAR_DIR"]))
    elapsed = done - ready
    rate = f"{n} messages in {elapsed:.1f}s ({n / elapsed:.0f}/s)"
    ctx.log(f"worker {index + 1}/{ctx.sizes.repetitions} ({deployment}): {rate}")
    return {
        "messages": n,
        "startup_s": ready - min(w.started for w in workers),
        "elapsed_s": elapsed,
        "events_per_s": n / elapsed,
        "worker_cpu_cores": sum(cpu) / elapsed,
        "cpu_cores_by_role": {role: c / elapsed for role, c in zip(roles, cpu, strict=True)},
        "broker_cpu_cores": None if broker_cpu is None else broker_cpu / elapsed,
        "worker_rss_mb": rss,
        "messages_by_topic": written,
    }


def drop_database(var_dir: Path) -> None:
    """Keep the worker's log, drop its embedded database and Faust data (hundreds of MB per repetition)."""
    for name in ("clickhouse", "faust"):
        shutil.rmtree(var_dir / name, ignore_errors=True)


def run(ctx: Context) -> dict[str, Any]:
    records = prefix_of(ctx.records, ctx.sizes.worker_events / max(len(ctx.records), 1))
    deployments = [d.strip() for d in ctx.sizes.worker_deployments.split(",") if d.strip()]
    unknown = set(deployments) - set(DEPLOYMENTS)
    if unknown or not deployments:
        raise ValueError(f"worker_deployments: {sorted(unknown)} unknown; use {', '.join(DEPLOYMENTS)}")
    by: dict[str, list[dict[str, Any]]] = {d: [] for d in deployments}
    for i in range(ctx.sizes.repetitions):
        for d in deployments:  # alternated, so a noisy minute hits every deployment alike
            by[d].append(one(ctx, i, records, d))
    out = _figure(ctx, deployments[0], by[deployments[0]])
    if len(deployments) > 1:
        first = out["throughput"]["median"]
        out["other_deployments"] = {}
        for d in deployments[1:]:
            other = _figure(ctx, d, by[d])
            other["throughput_ratio_to_headline"] = round(other["throughput"]["median"] / first, 3)
            out["other_deployments"][d] = other
    return out


def _figure(ctx: Context, deployment: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    throughput = summary([r["events_per_s"] for r in runs], 0)
    roles = DEPLOYMENTS[deployment]
    out: dict[str, Any] = {
        "what": f"python -m streams.cli worker, deployment {deployment} (roles {' + '.join(roles)}) on a fresh copy "
        "of the input topic per repetition, from every web endpoint ready to lag 0 on every consumer group; "
        "events = input messages; CPU and RSS summed over the processes",
        "deployment": deployment,
        "settings": {**PREFILLED_ENV, "ALARMFLOW_PARTITIONS": ctx.sizes.partitions},
        "messages": runs[0]["messages"],
        "input_share": round(runs[0]["messages"] / max(len(ctx.records), 1), 4),
        "throughput": throughput,
        "startup_s": summary([r["startup_s"] for r in runs], 2),
        "elapsed_s": summary([r["elapsed_s"] for r in runs], 1),
        "worker_cpu_cores": summary([r["worker_cpu_cores"] for r in runs], 2),
        "cpu_cores_by_role": {role: summary([r["cpu_cores_by_role"][role] for r in runs], 2) for role in roles},
        "worker_rss_mb_at_end": summary([r["worker_rss_mb"] for r in runs], 0),
        "target": {"metric": "worker / raw", "op": ">=", "value": TARGET},
        "headline": headline("worker", "events/s", throughput),
    }
    broker = [r["broker_cpu_cores"] for r in runs if r["broker_cpu_cores"] is not None]
    if broker:
        out["broker_cpu_cores"] = summary(broker, 2)
    written = runs[-1]["messages_by_topic"]
    out["messages_by_topic"] = written
    out["messages_written_per_input"] = round((sum(written.values()) - out["messages"]) / out["messages"], 2)
    raw = ctx.results.get("raw", {}).get("throughput")
    if raw:
        out["ratio_to_raw"] = round(throughput["median"] / raw["median"], 4)
    return out
