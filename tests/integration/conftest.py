"""Integration fixtures: the real broker started by `make test`, a fresh namespace per test, real workers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import Codec
from schemas.validation import Limits
from streams.kafka_admin import ensure_topics, list_topics, wait_caught_up
from streams.kafka_io import parse_lines, publish_events, read_topic, send_raw
from streams.net import free_port
from streams.query_client import query
from streams.reference_files import DEFAULT_DIRECTORY
from streams.settings import TOPIC_SUFFIXES, Settings

CODEC = Codec()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def broker() -> str:
    """The broker `make test` started; failing (never skipping) when it is not there."""
    bootstrap = Settings.from_env().kafka_bootstrap
    try:
        asyncio.run(list_topics(bootstrap))
    except Exception as exc:  # noqa: BLE001 - any failure means the broker is missing
        pytest.fail(f"no Kafka broker at {bootstrap} ({exc}); run the suite with `make test`")
    return bootstrap


@dataclass
class Stack:
    """One test's namespace: its own topics, consumer group, ClickHouse path and web port."""

    settings: Settings
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, **extra_env: str) -> subprocess.Popen[bytes]:
        log = (self.settings.var_dir / f"worker-{len(self.workers)}.log").open("wb")
        env = {**self.env, **extra_env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.workers.append(proc)
        self.wait_web(proc, Settings.from_env(env).web_url)
        return proc

    def wait_web(self, proc: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n{self.worker_log()}")
            try:
                urllib.request.urlopen(url + "/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"worker web endpoint not up after {timeout}s:\n{self.worker_log()}")

    def worker_log(self) -> str:
        logs = sorted(self.settings.var_dir.glob("worker-*.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def publish(self, events: list[dict[str, Any]]) -> int:
        lines = [json.dumps(e, ensure_ascii=False) for e in events]
        sent, errors = asyncio.run(publish_events(self.settings, CODEC, parse_lines(CODEC, lines, Limits())))
        assert not errors, errors[:3]
        return sent

    def send_raw(self, suffix: str, records: list[tuple[bytes | None, bytes]]) -> None:
        asyncio.run(send_raw(self.settings, self.settings.topic(suffix), records))

    def caught_up(self, timeout: float = 180) -> None:
        try:
            asyncio.run(wait_caught_up(self.settings.kafka_bootstrap, self.settings.consumer_groups(), timeout))
        except Exception as exc:
            raise AssertionError(f"{exc}\n{self.worker_log()}") from exc

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``alarmflow <args>`` against this stack (its topics, database and worker)."""
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )

    def cli_out(self, *args: str) -> str:
        """``alarmflow <args>``'s output, which must succeed."""
        done = self.cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def verify(self) -> subprocess.CompletedProcess[str]:
        """``alarmflow verify`` against this stack's database (the stream's aggregates against a SQL recount)."""
        return self.cli("verify")

    def assert_verified(self, settle_s: float = 30) -> None:
        """``alarmflow verify`` finds no difference. Hotspot decisions wait for the next ticks after the last alarm,
        so it is given a few seconds."""
        deadline = time.monotonic() + settle_s
        result = self.verify()
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(1)
            result = self.verify()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 difference(s) in total" in result.stdout

    def sql(self, text: str, **params: Any) -> list[list[Any]]:
        return query(self.settings, text, params).rows

    def scalar(self, text: str, **params: Any) -> Any:
        return self.sql(text, **params)[0][0]

    def read(self, suffix: str) -> list[Any]:
        async def collect() -> list[Any]:
            return [m async for m in read_topic(self.settings, self.settings.topic(suffix))]

        return asyncio.run(collect())


def make_stack(var_dir: Path, **extra_env: str) -> Stack:
    """A fresh namespace: its own topics, consumer groups, database path and ports."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "ALARMFLOW_TOPIC_PREFIX": ns,
        "ALARMFLOW_APP_ID": ns,
        "ALARMFLOW_VAR_DIR": str(var_dir),
        "ALARMFLOW_WEB_PORT": str(free_port()),
        "ALARMFLOW_CLICKHOUSE_HTTP_PORT": str(free_port()),
        "ALARMFLOW_PHONE_HMAC_KEY": "integration-test-key-0123456789",
        "ALARMFLOW_BATCH_WITHIN_MS": "200",
        **extra_env,
    }
    settings = Settings.from_env(env)
    asyncio.run(
        ensure_topics(
            bootstrap=settings.kafka_bootstrap,
            names=[settings.topic(s) for s in TOPIC_SUFFIXES],
            partitions=settings.partitions,
        )
    )
    return Stack(settings, env)


@pytest.fixture
def short_district(tmp_path: Path) -> Path:
    """The shipped district with a short SLA policy (4 / 8 / 12 s): live tests stay fast, and every stage of a case
    nobody accepts breaches within seconds."""
    target = tmp_path / "district"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    (target / "sla.json").write_text(
        json.dumps({"default": {"accept_s": 4, "contact_s": 8, "arrive_s": 12}, "by_priority": {}, "by_category": {}})
    )
    return target


@pytest.fixture
def stack(broker: str, tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(tmp_path)
    yield s
    for proc in s.workers:
        s.stop(proc, signal.SIGKILL)
