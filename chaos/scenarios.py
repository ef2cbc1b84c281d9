"""The faults, F1 to F9. Each runs the same input in a namespace of its own and returns what it observed.

Every scenario ends the same way: a worker holding the database runs, the settling records are published,
the groups catch up (nothing but clock records pending), and the results are read back for the invariants.
"""

from __future__ import annotations

import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chaos.observe import Expectation, Snapshot, snapshot
from chaos.stack import Broker, Namespace, Worker
from chaos.workload import Workload, poison, skewed
from streams.kafka_admin import groups_lag

SIGTERM_LIMIT_S = 10.0
STALL_LIMIT_S = 30.0
LOG_LINES_LIMIT = 100  # WARNING and ERROR lines a worker may write during one broker outage


@dataclass
class Context:
    """What every scenario gets: where to run, the input, the broker and a seeded random source."""

    new_namespace: Callable[[str], Namespace]
    workload: Workload
    broker: Broker
    rng: random.Random
    kills: int = 5


@dataclass
class Outcome:
    """A scenario's run: what it read back, what it expected, and its own checks (name → problem or None)."""

    snapshot: Snapshot
    expect: Expectation
    checks: dict[str, str | None] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    reference: Snapshot | None = None  # a clean run of its own, when the scenario runs another input


def finish(ns: Namespace, workload: Workload, worker: Worker | None = None) -> Snapshot:
    """Make sure a database-holding worker runs, settle, catch up, read back."""
    holder_alive = any(w.alive() and w.role != "agents" for w in ns.workers)
    if (worker is None or not worker.alive()) and not holder_alive:
        ns.start()
    ns.send(workload.settle)
    ns.caught_up()
    return snapshot(ns)


def clean(ctx: Context) -> Outcome:
    """The reference: one worker, the whole input as a backlog, no fault."""
    ns = ctx.new_namespace("clean")
    ns.send(ctx.workload.events)
    ns.start()
    return Outcome(finish(ns, ctx.workload), Expectation(ctx.workload))


def f1_kill9(ctx: Context) -> Outcome:
    ns = ctx.new_namespace("f1")
    ns.send(ctx.workload.events)
    worker = ns.start()
    busy = 0
    for _ in range(ctx.kills):
        time.sleep(ctx.rng.uniform(2.0, 8.0))
        busy += _pending(ns) > 0
        worker.stop(signal.SIGKILL)
        worker = ns.start()
    return Outcome(
        finish(ns, ctx.workload, worker),
        Expectation(ctx.workload),
        evidence={"kills": ctx.kills, "kills with a backlog": busy},
    )


def f2_sigterm(ctx: Context) -> Outcome:
    ns = ctx.new_namespace("f2")
    ns.send(ctx.workload.events)
    worker = ns.start()
    took: list[float] = []
    for _ in range(3):  # during the backlog
        time.sleep(ctx.rng.uniform(3.0, 8.0))
        took.append(worker.stop(signal.SIGTERM))
        worker = ns.start()
    ns.caught_up()
    took.append(worker.stop(signal.SIGTERM))  # idle, then back with no new input
    worker = ns.start()
    slowest = max(took)
    return Outcome(
        finish(ns, ctx.workload, worker),
        Expectation(ctx.workload),
        checks={"SIGTERM ≤ 10 s": None if slowest <= SIGTERM_LIMIT_S else f"one took {slowest:.1f} s"},
        evidence={"sigterm_s": [round(t, 1) for t in took]},
    )


def f3_broker_down(ctx: Context) -> Outcome:
    ns = ctx.new_namespace("f3")
    ns.send(ctx.workload.events)
    worker = ns.start()
    lines: list[int] = []
    for outage in (5.0, 40.0):
        time.sleep(4.0)
        before = worker.log_lines("ERROR") + worker.log_lines("WARNING")
        ctx.broker.down()
        time.sleep(outage)
        ctx.broker.up()
        time.sleep(6.0)
        lines.append(worker.log_lines("ERROR") + worker.log_lines("WARNING") - before)
    survived = worker.alive()
    checks = {
        "worker survives": None if survived else f"exited with {worker.proc.returncode}",
        f"≤ {LOG_LINES_LIMIT} log lines per outage": None
        if max(lines) <= LOG_LINES_LIMIT
        else f"{lines} WARNING/ERROR lines for the 5 s and 40 s outages",
    }
    return Outcome(
        finish(ns, ctx.workload, worker), Expectation(ctx.workload), checks=checks, evidence={"log_lines": lines}
    )


def f4_clickhouse(ctx: Context) -> Outcome:
    """Writes fail: 3 transient failures, a lost acknowledgement, then a permanent failure that stops the worker."""
    ns = ctx.new_namespace("f4")
    ns.send(ctx.workload.events)
    worker = ns.start(ALARMFLOW_FAILPOINTS="sink.write=transient:3,sink.write=lost_ack:5,sink.write=permanent:9")
    deadline = time.monotonic() + 180
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    code = worker.proc.poll()
    worker.stop(signal.SIGKILL)
    worker = ns.start()  # the supervisor restarts it, without the injected faults
    checks = {"a permanent error stops the worker (exit 70)": None if code == 70 else f"exit code {code}"}
    return Outcome(finish(ns, ctx.workload, worker), Expectation(ctx.workload), checks=checks)


def f5_rebalance(ctx: Context) -> Outcome:
    ns = ctx.new_namespace("f5")
    ns.send(ctx.workload.events)
    first = ns.start()
    watch = _StallWatch(ns)
    watch.start()
    time.sleep(5.0)
    second = ns.start("agents")
    time.sleep(8.0)
    third = ns.start("agents")
    time.sleep(8.0)
    took = [second.stop(signal.SIGTERM)]
    time.sleep(8.0)
    took.append(third.stop(signal.SIGTERM))
    ns.caught_up()
    stall = watch.stop()
    checks = {
        "SIGTERM ≤ 10 s": None if max(took) <= SIGTERM_LIMIT_S else f"one took {max(took):.1f} s",
        "no stall > 30 s": None if stall <= STALL_LIMIT_S else f"no progress for {stall:.0f} s with records pending",
    }
    return Outcome(
        finish(ns, ctx.workload, first),
        Expectation(ctx.workload),
        checks=checks,
        evidence={"sigterm_s": [round(t, 1) for t in took], "longest_stall_s": round(stall, 1)},
    )


def f6_poison(ctx: Context) -> Outcome:
    ns = ctx.new_namespace("f6")
    bad = poison(ctx.workload)
    half = len(ctx.workload.events) // 2
    ns.send(ctx.workload.events[:half])
    origins = ns.send_raw([(p.topic, p.key, p.value, None) for p in bad])
    ns.send(ctx.workload.events[half:])
    ns.start()
    return Outcome(finish(ns, ctx.workload), Expectation(ctx.workload, list(zip(bad, origins, strict=True))))


def f7_clocks(ctx: Context, delta: timedelta) -> Outcome:
    """The field app's clock off by ``delta``, and a kill -9 mid-way: compared with a clean run of that input.

    An hour behind puts every field event far beyond the allowed lateness (it is stamped before its alarm):
    such input is decided as the log presents it, so the reference is a clean run of the same log, not the
    live run of the suite's own input."""
    workload = skewed(ctx.workload, delta)
    label = "ahead" if delta > timedelta(0) else "behind"
    reference = ctx.new_namespace(f"f7{label}clean")
    reference.send(workload.events)
    reference.start()
    clean_run = finish(reference, workload)
    reference.stop_all()
    ns = ctx.new_namespace(f"f7{label}")
    ns.send(workload.events)
    worker = ns.start()
    time.sleep(ctx.rng.uniform(3.0, 8.0))
    worker.stop(signal.SIGKILL)
    worker = ns.start()
    return Outcome(finish(ns, workload, worker), Expectation(workload), reference=clean_run)


def f8_state_lost(ctx: Context) -> Outcome:
    ns = ctx.new_namespace("f8")
    ns.send(ctx.workload.events)
    worker = ns.start()
    time.sleep(ctx.rng.uniform(6.0, 10.0))
    worker.stop(signal.SIGTERM)
    started = time.monotonic()
    worker = ns.start()
    with_state = time.monotonic() - started
    worker.stop(signal.SIGTERM)
    shutil.rmtree(ns.var / "faust")  # the local RocksDB tables: recovered from the changelogs
    started = time.monotonic()
    worker = ns.start()
    without_state = time.monotonic() - started
    return Outcome(
        finish(ns, ctx.workload, worker),
        Expectation(ctx.workload),
        evidence={"start_s_with_local_state": round(with_state, 1), "start_s_without": round(without_state, 1)},
    )


def f9_replay(ctx: Context) -> list[Outcome]:
    """A complete run, then the projector replayed from offset 0: into a fresh database, then into the same one."""
    ns = ctx.new_namespace("f9")
    ns.send(ctx.workload.events)
    worker = ns.start()
    finish(ns, ctx.workload, worker)
    out = []
    for fresh in (True, False):
        ns.stop_all()
        ns.rewind_projector()
        if fresh:
            shutil.rmtree(ns.var / "clickhouse")
        ns.start()
        ns.caught_up()
        out.append(Outcome(snapshot(ns), Expectation(ctx.workload)))
    return out


def _pending(ns: Namespace) -> int:
    import asyncio

    return sum(x.pending for x in asyncio.run(groups_lag(ns.settings.kafka_bootstrap, ns.settings.consumer_groups())))


class _StallWatch:
    """Samples the groups' committed offsets every second; the longest time none moved while records were pending."""

    def __init__(self, ns: Namespace) -> None:
        self.ns, self.longest = ns, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.longest

    def _run(self) -> None:
        import asyncio

        last: tuple[Any, ...] | None = None
        since = time.monotonic()
        while not self._stop.wait(1.0):
            try:
                lags = asyncio.run(groups_lag(self.ns.settings.kafka_bootstrap, self.ns.settings.consumer_groups()))
            except Exception:  # noqa: BLE001 - a look that failed (coordinator moving) is no progress
                lags = []
            committed = tuple(x.committed for x in lags)
            now = time.monotonic()
            if lags and (committed != last or not any(x.pending for x in lags)):
                last, since = committed, now
            self.longest = max(self.longest, now - since)
