"""Real workers (``python -m streams.cli worker``) as subprocesses, and waiting for their consumer groups' lag.

Each worker gets its own topic prefix, app id (consumer groups), var dir (embedded ClickHouse) and web port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.client import Client
from prometheus_client.parser import text_string_to_metric_families

from bench.context import Context
from bench.machine import rss_mb
from projections.query import run_readonly
from streams import query_client
from streams.net import free_port
from streams.settings import Settings

# A pre-filled input needs no special setting: field events wait for their dispatch as long as the dispatch
# stage has not passed them (the orphan rule), however long a large input takes to read.
PREFILLED_ENV: dict[str, str] = {}


class BenchError(Exception):
    """A figure could not be measured (a worker died, a run stalled); the figure reports it instead."""


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    settings: Settings
    log: Path
    started: float  # time.monotonic() at spawn
    _read: int = 0  # how far crash() has read the log

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def metric(self, name: str) -> float:
        """A sample's value (summed over its labels) from the worker's /metrics; 0 when it has none."""
        with urllib.request.urlopen(self.settings.web_url + "/metrics", timeout=10) as r:  # noqa: S310 - our loopback
            text = r.read().decode()
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)

    def crash(self) -> str | None:
        """The first new agent crash in the log since the last look (Faust restarts a crashed agent and keeps the
        process up, so a crash loop would otherwise look like a stall)."""
        try:
            with self.log.open("rb") as f:
                f.seek(self._read)
                chunk = f.read()
        except OSError:
            return None
        cut = chunk.rfind(b"\n") + 1
        self._read += cut
        for line in chunk[:cut].decode(errors="replace").splitlines():
            if "Crashed reason=" in line:
                return line[:500]
        return None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def worker_env(ctx: Context, prefix: str, app_id: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The user's ALARMFLOW_* knobs, with the ones that isolate this worker overridden."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        ALARMFLOW_KAFKA_BOOTSTRAP=ctx.base.kafka_bootstrap,
        ALARMFLOW_TOPIC_PREFIX=prefix,
        ALARMFLOW_APP_ID=app_id,
        ALARMFLOW_VAR_DIR=str(var_dir),
        ALARMFLOW_CLICKHOUSE_DSN="",
        ALARMFLOW_WEB_PORT=str(free_port()),
        ALARMFLOW_CLICKHOUSE_HTTP_PORT=str(free_port()),
        ALARMFLOW_PHONE_HMAC_KEY=ctx.phone_key,
        ALARMFLOW_PARTITIONS=str(ctx.sizes.partitions),
        ALARMFLOW_LOG_LEVEL="warning",
        ALARMFLOW_DISTRICT_DIR=str(ctx.district_dir),  # the workload's district (--workload)
        PYTHONPATH=str(ctx.code_dir),
    )
    env.update(extra)
    return env


def deployment_envs(ctx: Context, prefix: str, label: str, roles: Sequence[str], **extra: str) -> list[dict[str, str]]:
    """One environment per process of a deployment (``roles``) on one prefix: var dir ``<run dir>/<label>-<role>``."""
    return [
        worker_env(ctx, prefix, prefix, ctx.run_dir / f"{label}-{role}", ALARMFLOW_ROLE=role, **extra) for role in roles
    ]


def spawn(ctx: Context, name: str, env: Mapping[str, str], module: str = "streams.cli") -> Worker:
    settings = Settings.from_env(env)
    log = settings.var_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "worker"],
            cwd=ctx.code_dir,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the bench, which stops its workers itself
        )
    return Worker(name, proc, settings, log, time.monotonic())


def wait_ready(worker: Worker, timeout: float = 120.0) -> float:
    """Block until the worker's web endpoint answers; returns that moment (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive:
            raise BenchError(f"{worker.name} exited with {worker.proc.returncode} during start-up:\n{worker.tail()}")
        try:
            urllib.request.urlopen(worker.settings.web_url + "/", timeout=1).close()  # noqa: S310 - our loopback
            return time.monotonic()
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{worker.name} not ready after {timeout:.0f}s:\n{worker.tail()}")


def stop(worker: Worker, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL for the whole process group after ``timeout`` (a run's state is thrown away anyway)."""
    if worker.alive:
        os.killpg(worker.proc.pid, signal.SIGTERM)
        try:
            worker.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()


@contextmanager
def shielded() -> Iterator[None]:
    """Clean-up that a second Ctrl-C or SIGTERM must not cut short (``timeout`` and shells signal twice)."""
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextmanager
def running(workers: list[Worker]) -> Iterator[list[Worker]]:
    """Every worker appended to ``workers`` is stopped on the way out, whatever happened."""
    try:
        yield workers
    finally:
        with shielded():
            for w in workers:
                stop(w)


Sample = Callable[[float, Mapping[str, int]], None]  # (time.monotonic(), each group's committed offsets) per look


def wait_caught_up(
    ctx: Context,
    groups: Mapping[str, Sequence[str]],
    workers: Sequence[Worker],
    timeout: float,
    on_look: Sample | None = None,
    idle: int = 0,
) -> float:
    """Time (time.monotonic()) of the first look at which the groups' total lag is at most ``idle`` (0: lag 0 on every
    partition; see ``idle_lag`` for when it is more)."""
    return asyncio.run(_wait(ctx, groups, workers, timeout, on_look, idle))


def idle_lag(ctx: Context, groups: Mapping[str, Sequence[str]], seconds: float = 3.0) -> int:
    """The most lag the groups show at a look while their workers have nothing to read but their own clock ticks.

    Each worker appends a tick a second to the partitions it owns, which cascade as progress announcements, and
    commits once a second; two workers do so on phases of their own. So their groups' lag is 0 only when every
    worker happens to have committed since its last tick: a look can miss that for minutes (a 60k-message run of
    two agents workers took 194 s to show lag 0, one took 21 s). Measured before the input arrives, this is the
    lag that still means caught up."""
    return asyncio.run(_idle(ctx, groups, seconds))


async def _idle(ctx: Context, groups: Mapping[str, Sequence[str]], seconds: float) -> int:
    most = 0
    async with LagWatcher(ctx.base.kafka_bootstrap) as watcher:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with suppress(KafkaError):  # a fresh group has no coordinator for a moment
                most = max(most, await watcher.total(groups))
            await asyncio.sleep(0.2)
    return most


class LagWatcher:
    """Consumer lag with clients kept open: streams.kafka_admin.groups_lag opens two clients per group per look,
    which at a look a second costs the shared CPUs several percent of a core during a long run."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.partitions: dict[str, list[TopicPartition]] = {}
        self.committed: dict[str, int] = {}  # each group's committed offsets, summed, at the last look: its reads

    async def __aenter__(self) -> LagWatcher:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def total(self, groups: Mapping[str, Sequence[str]]) -> int:
        wanted = {t for topics in groups.values() for t in topics}
        if not wanted <= self.partitions.keys():
            await self.consumer._client.force_metadata_update()
            for t in wanted:
                self.partitions[t] = [TopicPartition(t, p) for p in self.consumer.partitions_for_topic(t) or ()]
        tps = [tp for t in wanted for tp in self.partitions[t]]
        ends = await self.consumer.end_offsets(tps)
        total = 0
        for group, topics in groups.items():
            committed = await self.admin.list_consumer_group_offsets(group)
            offsets = [committed[tp].offset if tp in committed else 0 for t in topics for tp in self.partitions[t]]
            total += sum(ends[tp] for t in topics for tp in self.partitions[t]) - sum(offsets)
            self.committed[group] = sum(offsets)
        return total


async def _wait(
    ctx: Context,
    groups: Mapping[str, Sequence[str]],
    workers: Sequence[Worker],
    timeout: float,
    on_look: Sample | None,
    idle: int,
) -> float:
    start = time.monotonic()
    best, moved = None, start
    pause = 0.1
    async with LagWatcher(ctx.base.kafka_bootstrap) as watcher:
        while True:
            now = time.monotonic()
            for w in workers:
                if not w.alive:
                    raise BenchError(f"{w.name} exited with {w.proc.returncode}:\n{w.tail()}")
                if crashed := w.crash():
                    raise BenchError(f"{w.name}: an agent crashed: {crashed}")
            try:
                total: int | None = await watcher.total(groups)
            except KafkaError as exc:  # a fresh group has no coordinator for a moment
                total = None
                ctx.log(f"lag not readable yet: {exc}")
            if on_look is not None and total is not None:
                on_look(now, watcher.committed)
            if total is not None and total <= idle:
                return now
            if total is not None and (best is None or total < best):
                best, moved = total, now
            if now - moved > ctx.sizes.stall_s:
                raise BenchError(f"no progress for {ctx.sizes.stall_s:.0f}s at lag {best}:\n{workers[0].tail()}")
            if now - start > timeout:
                raise BenchError(f"not caught up after {timeout:.0f}s (lag {total}):\n{workers[0].tail()}")
            # Look often near the end, rarely in between.
            pause = min(ctx.sizes.poll_s, pause * 1.5) if total is None or total > 1000 else 0.1
            await asyncio.sleep(pause)


_clients: dict[int, Client] = {}


def query(worker: Worker, sql: str, parameters: Mapping[str, object] | None = None) -> list[list[object]]:
    """Read-only SQL through the worker's ClickHouse HTTP interface (it owns the embedded database); one client per
    worker, so polling costs one request per query."""
    port = worker.settings.clickhouse_http_port
    client = _clients.get(port)
    if client is None:
        client = query_client.worker_client(worker.settings)
        if client is None:
            raise BenchError(f"{worker.name}: nothing answers on its ClickHouse HTTP port {port}")
        _clients[port] = client
    return run_readonly(client, sql, dict(parameters or {})).rows
