"""Real parts for the fault suite: the broker it starts, one namespace per run, and the worker processes in it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aiokafka.structs import RecordMetadata

from projections.query import QueryResult
from schemas.codec import Codec
from streams import kafka_local
from streams.errors import BrokerError
from streams.kafka_admin import ensure_topics, reset_offsets, wait_caught_up
from streams.kafka_io import producer
from streams.net import free_port
from streams.query_client import query
from streams.settings import TOPIC_SUFFIXES, Settings
from streams.simulator.events import SimEvent
from streams.simulator.publisher import encode

REPO = Path(__file__).resolve().parents[1]
CODEC = Codec()
STOP_GRACE_S = 60.0  # how long a stopped worker gets before it is killed (a hang, reported as such)


@dataclass
class Worker:
    """One worker process: its role, its log, its web port."""

    proc: subprocess.Popen[bytes]
    role: str
    log: Path
    web_url: str

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """Signal it and wait; the seconds it took to exit (``STOP_GRACE_S`` and a kill when it hangs)."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return float("inf")
        return time.monotonic() - started

    def log_lines(self, level: str) -> int:
        return sum(f"[{level}]" in line for line in self.log.read_text(errors="replace").splitlines())


@dataclass
class Namespace:
    """One run's topics, consumer groups, database and state, on the suite's broker."""

    root: Path
    name: str
    base: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    opened: ClassVar[list[Namespace]] = []

    def __post_init__(self) -> None:
        Namespace.opened.append(self)
        self.var = self.root / self.name
        self.var.mkdir(parents=True, exist_ok=True)
        self.env = {
            **self.base,
            "ALARMFLOW_TOPIC_PREFIX": self.name,
            "ALARMFLOW_APP_ID": self.name,
            "ALARMFLOW_VAR_DIR": str(self.var),
            "ALARMFLOW_WEB_PORT": str(free_port()),
            "ALARMFLOW_CLICKHOUSE_HTTP_PORT": str(free_port()),
        }
        self.settings = Settings.from_env(self.env)
        topics = [self.settings.topic(s) for s in TOPIC_SUFFIXES]
        asyncio.run(ensure_topics(self.settings.kafka_bootstrap, topics, self.settings.partitions))

    def start(self, role: str = "all", wait: bool = True, **extra: str) -> Worker:
        """A worker; the one holding the database uses the namespace's var dir and port, others their own."""
        env = {**self.env, "ALARMFLOW_ROLE": role, **extra}
        if role == "agents":
            own = self.var / f"agents-{len(self.workers)}"
            env.update(ALARMFLOW_VAR_DIR=str(own), ALARMFLOW_WEB_PORT=str(free_port()))
        settings = Settings.from_env(env)
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        log = self.var / f"worker-{len(self.workers)}-{role}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            cwd=REPO,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = Worker(proc, role, log, settings.web_url)
        self.workers.append(worker)
        if wait:
            self.wait_web(worker)
        return worker

    def wait_web(self, worker: Worker, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"worker exited with {worker.proc.returncode}: see {worker.log}")
            try:
                urllib.request.urlopen(worker.web_url + "/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"worker web endpoint not up after {timeout}s: see {worker.log}")

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    def stop_all(self, sig: int = signal.SIGTERM) -> list[float]:
        return [w.stop(sig) for w in self.alive()]

    # ---- input ---------------------------------------------------------------------------------------------

    def send(self, events: Iterable[SimEvent], timestamps: bool = False) -> list[str]:
        """Publish the simulator's messages in order; their origins (topic/partition/offset)."""
        return self.send_raw([(e.topic, *encode(CODEC, e), e.publish_ms if timestamps else None) for e in events])

    def send_raw(self, records: list[tuple[str, bytes | None, bytes, int | None]]) -> list[str]:
        async def run() -> list[str]:
            kafka = producer(self.settings)
            await kafka.start()
            try:
                sent = [
                    await kafka.send(self.settings.topic(topic), value, key=key, timestamp_ms=ts)
                    for topic, key, value, ts in records
                ]
                done: list[RecordMetadata] = await asyncio.gather(*sent)
            finally:
                await kafka.stop()
            return [f"{m.topic}/{m.partition}/{m.offset}" for m in done]

        return asyncio.run(run())

    # ---- output --------------------------------------------------------------------------------------------

    def caught_up(self, timeout: float = 600) -> None:
        """Wait until nothing but clock records is pending; fail at once if a worker died on the way."""
        deadline = time.monotonic() + timeout
        while True:
            dead = [w for w in self.workers[-3:] if w.proc.poll() not in (None, 0, -signal.SIGTERM, -signal.SIGKILL)]
            if dead and not self.alive():
                raise RuntimeError(f"the worker exited with {dead[-1].proc.returncode}: see {dead[-1].log}")
            try:
                asyncio.run(wait_caught_up(self.settings.kafka_bootstrap, self.settings.consumer_groups(), 10))
                return
            except BrokerError:
                if time.monotonic() > deadline:
                    raise

    def sql(self, text: str, **params: Any) -> list[list[Any]]:
        result: QueryResult = query(self.settings, text, params)
        return result.rows

    def load(self) -> tuple[dict[str, int], set[int]]:
        """Each member's open cases as the alive agent workers count them, and the routing partitions they hold."""
        total: dict[str, int] = {}
        partitions: set[int] = set()
        for w in self.alive():
            if w.role == "projector":
                continue
            with urllib.request.urlopen(w.web_url + "/load", timeout=10) as response:
                body = json.loads(response.read())
            partitions |= set(body["partitions"])
            for key, n in body["open_cases"].items():
                total[key] = total.get(key, 0) + n
        return total, partitions

    def rewind_projector(self) -> None:
        group = f"{self.settings.app_id}-projector"
        topics = self.settings.consumer_groups()[group]
        asyncio.run(reset_offsets(self.settings.kafka_bootstrap, group, topics))


class Broker:
    """The suite's own single-node broker (its port and data apart from the tests' and the demo's)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def up(self) -> None:
        kafka_local.up(self.settings)

    def down(self) -> None:
        kafka_local.down(self.settings)

    def purge(self) -> None:
        kafka_local.down(self.settings, purge=True)


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ALARMFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ALARMFLOW_PHONE_HMAC_KEY": "chaos-suite-key-0123456789abcdef",
    }
