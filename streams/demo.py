"""``make demo``: broker, workers (agents and projector), a simulated week of Hezhuang, the report, and everything
stopped again."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import click

from streams import kafka_local
from streams.domain.outcomes import LOCAL_TZ
from streams.kafka_admin import wait_caught_up
from streams.net import free_port
from streams.query_client import render
from streams.reference_files import DEFAULT_DIRECTORY, load_district, load_hotspot_policy
from streams.report import agenda, sections
from streams.report_html import write_html
from streams.settings import Settings
from streams.simulator.config import SimConfig
from streams.simulator.publisher import publish
from streams.verify import Verification, verify

# The demo worker's allowed lateness: short, so the last minute's decisions settle within seconds.
DEMO_LATENESS_MS = 10_000


@dataclass(frozen=True)
class DemoRun:
    """What the demo simulates: a week of Hezhuang by default, played fast."""

    days: float = 7.0
    seed: int = 7
    rate_per_day: float | None = None  # None: the simulator's Hezhuang default
    play_seconds: float = 45.0  # the simulated span is played in about this long

    def config(self) -> SimConfig:
        # Out-of-order delivery stays within the lateness the demo's worker allows.
        base = SimConfig(seed=self.seed, days=self.days, disorder_s=DEMO_LATENESS_MS / 1000)
        return base if self.rate_per_day is None else replace(base, rate_per_day=self.rate_per_day)

    @property
    def speed(self) -> float:
        return self.days * 86_400 / self.play_seconds


def demo_settings(base: Settings) -> Settings:
    """The demo's own broker data and database under var/demo, so it never mixes with other runs.

    One partition per topic, as suits a street of a few calls a day: the simulation plays days in
    seconds, and with several partitions most of them would sit idle between calls, their clocks
    advancing by the seconds of log time that pass, so the newest hotspot decisions would wait for
    days of simulated time (see the README on watermarks)."""
    home = base.var_dir / "demo"
    key_file = home / "phone_hmac.key"
    return replace(
        base,
        var_dir=home,
        kafka_home=home / "kafka",
        phone_hmac_key_file=base.phone_hmac_key_file or key_file,
        partitions=1,
    )


def _ensure_key(settings: Settings) -> None:
    path = settings.phone_hmac_key_file
    if not settings.phone_hmac_key and path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)


@dataclass(frozen=True)
class Process:
    """One worker process of the demo: its role, its settings and its log."""

    role: str
    settings: Settings
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.settings.var_dir / f"worker-{self.role}.log"


def roles_env(settings: Settings, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The default deployment, two processes: the projector (it holds the database, the board and the ClickHouse
    HTTP interface, on the configured ports) and the agents (their own data directory and web port, the next one),
    so the ClickHouse writer and the agents each have a core."""
    return {
        "projector": {**env, "ALARMFLOW_ROLE": "projector"},
        "agents": {
            **env,
            "ALARMFLOW_ROLE": "agents",
            "ALARMFLOW_VAR_DIR": str(settings.var_dir / "agents"),
            "ALARMFLOW_WEB_PORT": str(free_port(settings.web_port + 1)),
        },
    }


@contextmanager
def _workers(settings: Settings, env: dict[str, str]) -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        for role, role_env in roles_env(settings, env).items():
            own = Settings.from_env(role_env)
            own.var_dir.mkdir(parents=True, exist_ok=True)
            with (own.var_dir / f"worker-{role}.log").open("wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "streams.cli", "worker"],
                    env=role_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append(Process(role, own, proc))
        yield started
    finally:
        for p in started:
            if p.proc.poll() is None:
                os.killpg(p.proc.pid, signal.SIGTERM)
        for p in started:
            try:
                p.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait()


def _exited(processes: list[Process]) -> Process | None:
    return next((p for p in processes if p.proc.poll() is not None), None)


def _wait_web(processes: list[Process], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(processes)
    while waiting and time.monotonic() < deadline:
        if gone := _exited(processes):
            raise click.ClickException(f"the {gone.role} worker exited; see {gone.log}")
        try:
            urllib.request.urlopen(f"{waiting[0].settings.web_url}/", timeout=1).close()  # noqa: S310 - loopback
            waiting.pop(0)
        except OSError:
            time.sleep(0.3)
    if waiting:
        raise click.ClickException(f"the {waiting[0].role} worker did not come up; see {waiting[0].log}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(base: Settings, run: DemoRun = DemoRun(), html: Path | None = None, stay: bool = False) -> None:
    settings = demo_settings(base)
    shutil.rmtree(settings.var_dir / "clickhouse", ignore_errors=True)
    _ensure_key(settings)
    env = {
        **os.environ,
        "ALARMFLOW_VAR_DIR": str(settings.var_dir),
        "ALARMFLOW_KAFKA_HOME": str(settings.kafka_home),
        "ALARMFLOW_PHONE_HMAC_KEY_FILE": str(settings.phone_hmac_key_file),
        "ALARMFLOW_SLA_LATENESS_MS": str(DEMO_LATENESS_MS),
        "ALARMFLOW_PARTITIONS": str(settings.partitions),
    }
    html = html or settings.var_dir / "report.html"
    # Ctrl-C and SIGTERM both unwind through the finally blocks below, so nothing is left running.
    signal.signal(signal.SIGTERM, _interrupt)
    # Ours, not asyncio's: asyncio's handler only cancels the running task, and a cancellation that lands
    # inside aiokafka's shutdown can be swallowed there, letting the demo run on.
    signal.signal(signal.SIGINT, _interrupt)
    click.echo(f"== starting Kafka on {settings.kafka_bootstrap} (jars via Maven on first run)")
    kafka_local.up(settings)
    try:
        with _workers(settings, env) as processes:
            _wait_web(processes)
            click.echo(
                "== two worker processes: "
                + ", ".join(f"{p.role} on {p.settings.web_url} (log {p.log})" for p in processes)
            )
            click.echo(f"== the command room's live board: {settings.web_url}/board")
            _simulate(settings, run)
            asyncio.run(wait_caught_up(settings.kafka_bootstrap, settings.consumer_groups(), timeout=600))
            click.echo("== the workers have caught up (lag 0)")
            _report(settings, html)
            if stay:
                _stay(settings, processes)
    finally:
        kafka_local.down(settings, purge=True)
        click.echo("== stopped the workers and the broker")


def _stay(settings: Settings, processes: list[Process]) -> None:
    """Keep the workers and the broker up for the board (and queries) until Ctrl-C or SIGTERM."""
    click.echo(f"== staying up: the live board is at {settings.web_url}/board; Ctrl-C stops everything")
    try:
        while (gone := _exited(processes)) is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
    raise click.ClickException(f"the {gone.role} worker exited; see {gone.log}")


def _simulate(settings: Settings, run: DemoRun) -> None:
    config = run.config().resolved(datetime.now(UTC))
    district = load_district(settings.district_dir or DEFAULT_DIRECTORY)
    click.echo(
        f"== simulating {run.days:g} days of Hezhuang from {config.start:%Y-%m-%d %H:%M} UTC "
        f"at {run.speed:,.0f}x (seed {run.seed}): alarms, field responses, duplicates, disorder, bad messages"
    )
    summary = asyncio.run(publish(settings, config, district, run.speed))
    for line in summary.lines():
        click.echo(f"   {line}")


def _report(settings: Settings, html: Path) -> None:
    today = datetime.now(LOCAL_TZ).date()
    for title, result in sections(settings):
        click.echo(f"\n-- {title}")
        click.echo(render(result, "table"), nl=False)
    click.echo(f"\n-- Hotspot agenda for {today.isoformat()} (联合会商)")
    click.echo(render(agenda(settings, today), "table"), nl=False)
    write_html(settings, html, today)
    click.echo(f"\n== wrote the HTML report to {html}")
    checked = _settled_verification(settings)
    click.echo(f"== alarmflow verify: {checked.differences} difference(s) between the stream and a batch recount")
    for result in (checked.outcome_differences, checked.hotspot_differences):
        if result.rows:
            click.echo(render(result, "table"), nl=False)


def _settled_verification(settings: Settings, timeout: float = 30.0) -> Verification:
    """The newest alarms' hotspot decisions wait for the lateness and the next tick: retry briefly."""
    policy = load_hotspot_policy(settings.district_dir or DEFAULT_DIRECTORY)
    deadline = time.monotonic() + timeout
    checked = verify(settings, policy)
    while checked.differences and time.monotonic() < deadline:
        time.sleep(1)
        checked = verify(settings, policy)
    return checked
