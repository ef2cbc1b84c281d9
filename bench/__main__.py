"""``python -m bench [--quick] [--out DIR]``: every figure in one run on one broker, a table and a JSON file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from bench import profiling, report, snapshot
from bench.broker import broker
from bench.config import FULL, QUICK, WORKLOADS, Sizes
from bench.context import Context
from bench.figures import decode, flat, floor, isolation, latency, memory, raw, scale, sink, worker
from bench.machine import describe
from bench.workload import create_topics, describe_workload, publish, upstream

Figure = Callable[[Context], dict[str, Any]]
FIGURES: tuple[tuple[str, Figure], ...] = (
    ("raw", raw.run),  # always first: the baseline, and it reads the input for the others
    ("decode", decode.run),
    ("sink", sink.run),
    ("worker", worker.run),
    ("floor", floor.run),  # after worker: it prices what the worker moved per input
    ("latency", latency.run),  # after worker: its load is half the worker's throughput
    ("scale", scale.run),
    ("flat", flat.run),  # CPU per message read over the last 10% of a backlog against the first
    ("memory", memory.run),
    ("isolation", isolation.run),  # the projector alone vs with analysts' queries through the ClickHouse HTTP port
)
RESULTS = snapshot.REPO / "bench" / "results"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds per figure (CI)")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the results JSON")
    p.add_argument("--events", type=int, help="messages in the pre-published input topic")
    p.add_argument("--repetitions", type=int)
    p.add_argument("--size", action="append", default=[], metavar="NAME=N", help="any field of bench.config.Sizes")
    p.add_argument("--figures", help="comma-separated subset (raw always runs)")
    p.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        default="street",
        help="street: one street (deploy/district, the default; comparable with older results); "
        "city: every street of deploy/city (40), for the input and every worker",
    )
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile'd worker run")
    p.add_argument("--keep", action="store_true", help="keep var/bench/<run> (logs, district copies)")
    p.add_argument("--report", type=Path, metavar="FILE", help="recompute the targets of a results file, print it")
    return p.parse_args(argv)


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    if args.events:
        sizes = replace(sizes, events=args.events, decode_payloads=args.events, worker_events=args.events)
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in Sizes.__dataclass_fields__:
            raise SystemExit(f"--size {item}: no such size; see bench/config.py")
        sizes = replace(sizes, **{name: type(getattr(sizes, name))(value)})
    if args.repetitions:
        sizes = replace(sizes, repetitions=args.repetitions)
    return sizes


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _prepare(ctx: Context) -> dict[str, Any]:
    """Publish the input once: the simulator's traffic, encoded with the project's codec."""
    asyncio.run(create_topics(ctx.base, ctx.codec, ctx.sizes.partitions))
    start = time.monotonic()
    with Progress(console=ctx.console, transient=True) as progress:
        bar = progress.add_task("publishing the input", total=ctx.sizes.events)
        events = upstream(ctx.sizes.events, ctx.sizes.sim_rate_per_day, workload=ctx.workload)
        sent = asyncio.run(publish(ctx.base, ctx.codec, events, lambda n: progress.advance(bar, n)))
    ctx.log(f"published {sent} messages in {time.monotonic() - start:.0f}s")
    return {
        "messages": sent,
        "topics": ctx.input_topics(),
        "partitions": ctx.sizes.partitions,
        "source": f"streams.simulator (seed 1, {ctx.sizes.sim_rate_per_day:.0f} alarms/day, default imperfections, "
        f"workload {ctx.workload.name}: deploy/{ctx.workload.district}, street {ctx.workload.street})",
        "publish_s": round(time.monotonic() - start, 1),
    }


def _measure(ctx: Context, name: str, figure: Figure) -> dict[str, Any]:
    ctx.console.rule(name)
    start = time.monotonic()
    try:
        result = figure(ctx)
    except Exception as exc:  # noqa: BLE001 - one figure failing must not cost the others
        ctx.console.print(traceback.format_exc())
        result = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    sizes = _sizes(args)
    wanted = {"raw", *(args.figures.split(",") if args.figures else [n for n, _ in FIGURES])}
    run_id = f"bench{datetime.now(UTC):%m%d%H%M%S}"
    run_dir = snapshot.REPO / "var" / "bench" / run_id
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "code": snapshot.git_state(),
        "sizes": asdict(sizes),
        "workload": describe_workload(
            WORKLOADS[args.workload], sizes.sim_rate_per_day, sorted({sizes.partitions, sizes.scale_partitions})
        ),
        "figures": {},
    }
    start = time.monotonic()
    try:
        code_dir = snapshot.take(run_dir / "code")
        with broker(args.quick) as b:
            results["broker"] = {"bootstrap": b.settings.kafka_bootstrap, "started_by_bench": b.own}
            base = replace(b.settings, topic_prefix=run_id, partitions=sizes.partitions)
            workload = WORKLOADS[args.workload]
            figures = results["figures"]
            ctx = Context(sizes, args.quick, base, run_dir, code_dir, console, results=figures, workload=workload)
            results["input"] = _prepare(ctx)
            for name, figure in FIGURES:
                if name in wanted:
                    results["figures"][name] = _measure(ctx, name, figure)
                if name == "worker" and name in wanted and not args.no_profile:
                    results["figures"]["worker"]["profile"] = _measure(ctx, "profile", profiling.run)
    except KeyboardInterrupt:
        results["interrupted"] = True
        console.print("[red]interrupted: workers and broker stopped[/red]")
    except Exception as exc:  # noqa: BLE001 - the broker or the input failed: report it like a figure would
        console.print(traceback.format_exc())
        results["error"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    finally:
        results["duration_s"] = round(time.monotonic() - start, 1)
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        merged = {**results["figures"], "machine": results["machine"]}
        results["targets"] = report.targets(merged)
        failed = any("error" in f for f in results["figures"].values())
        if not (args.keep or failed):
            shutil.rmtree(run_dir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    # aiokafka retries what it warns about (a partition's leader moving right after topic creation, say).
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    if args.report:
        console.print(report.table(report.rerender(args.report)))
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    results = run(args, console)
    path = report.write(results, args.out)
    console.print(report.table(results))
    console.print(f"results: {path}  ({results['duration_s']:.0f}s)")
    return 130 if results.get("interrupted") else 1 if "error" in results else 0


if __name__ == "__main__":
    raise SystemExit(main())
