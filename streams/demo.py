"""``make demo``: broker, worker, a day of Hezhuang's events, the numbers, and everything stopped again."""

from __future__ import annotations

import asyncio
import json
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
from dataclasses import replace
from pathlib import Path

import click

from schemas.codec import Codec
from schemas.validation import Limits
from streams import kafka_local
from streams.kafka_admin import wait_caught_up
from streams.kafka_io import parse_lines, publish_events, read_jsonl, send_raw
from streams.query_client import query, render
from streams.settings import Settings

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "samples" / "hezhuang-sample.jsonl"

SECTIONS = [
    ("Events by type (each event_id once)", "SELECT type, events FROM v_event_counts"),
    ("Raw log vs unique events", "SELECT count() AS rows, uniqExact(event_id) AS unique_events FROM events"),
    ("Alarms by disposition and rule", "SELECT disposition, rule, alarms FROM v_triage_summary"),
    (
        "Dispatches by street, force and grid",
        "SELECT street_code, team, grid_code, level, sum(cases) AS cases FROM v_routing "
        "GROUP BY street_code, team, grid_code, level ORDER BY street_code, team, grid_code",
    ),
    (
        "REVIEW queue (street command room)",
        "SELECT case_id, received_local, category, rule, reason FROM v_review_queue",
    ),
    (
        "SLA per stage (within target = met / (met + breached); quantiles of seconds from dispatch)",
        "SELECT stage, met, breached, cancelled, open, within_target, p50_s, p90_s, p95_s FROM v_sla_by_stage",
    ),
    (
        "SLA breaches",
        "SELECT case_id, stage, toTimeZone(deadline, 'Asia/Shanghai') AS deadline_local, team, assignee_id, late_by_ms "
        "FROM sla_breaches ORDER BY deadline, stage LIMIT 20",
    ),
    ("Dead letters", "SELECT source_topic, error_class, messages FROM v_deadletter_counts"),
]


def demo_settings(base: Settings) -> Settings:
    """The demo's own broker data and database under var/demo, so it never mixes with other runs."""
    home = base.var_dir / "demo"
    key_file = home / "phone_hmac.key"
    return replace(
        base, var_dir=home, kafka_home=home / "kafka", phone_hmac_key_file=base.phone_hmac_key_file or key_file
    )


def _ensure_key(settings: Settings) -> None:
    path = settings.phone_hmac_key_file
    if not settings.phone_hmac_key and path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)


@contextmanager
def _worker(settings: Settings, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = (settings.var_dir / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_web(settings: Settings, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the worker exited; see {settings.var_dir / 'worker.log'}")
        try:
            urllib.request.urlopen(f"{settings.web_url}/", timeout=1).close()  # noqa: S310 - our loopback URL
            return
        except OSError:
            time.sleep(0.3)
    raise click.ClickException("the worker did not come up")


def _first(sample: Path) -> dict[str, object]:
    obj: dict[str, object] = json.loads(next(read_jsonl(sample)))
    return obj


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(base: Settings, sample: Path = SAMPLE) -> None:
    settings = demo_settings(base)
    shutil.rmtree(settings.var_dir / "clickhouse", ignore_errors=True)
    _ensure_key(settings)
    env = {
        **os.environ,
        "ALARMFLOW_VAR_DIR": str(settings.var_dir),
        "ALARMFLOW_KAFKA_HOME": str(settings.kafka_home),
        "ALARMFLOW_PHONE_HMAC_KEY_FILE": str(settings.phone_hmac_key_file),
    }
    # Ctrl-C and SIGTERM both unwind through the finally blocks below, so nothing is left running.
    signal.signal(signal.SIGTERM, _interrupt)
    click.echo(f"== starting Kafka on {settings.kafka_bootstrap} (jars via Maven on first run)")
    kafka_local.up(settings)
    try:
        with _worker(settings, env) as proc:
            _wait_web(settings, proc)
            codec = Codec()
            lines = parse_lines(codec, read_jsonl(sample), Limits())
            sent, errors = asyncio.run(publish_events(settings, codec, lines))
            click.echo(
                f"== published {sent} events from {sample.name}" + (f" ({len(errors)} bad lines)" if errors else "")
            )
            # Two messages an upstream system should never send, to show the dead-letter path.
            bad = [(b"HZ-X1", b"not avro at all"), (b"wrong-key", codec.encode(codec.from_json(_first(sample))))]
            asyncio.run(send_raw(settings, settings.topic("alarms"), bad))
            click.echo(f"== sent {len(bad)} malformed messages to {settings.topic('alarms')}")
            asyncio.run(wait_caught_up(settings.kafka_bootstrap, settings.consumer_groups(), timeout=300))
            click.echo("== the worker has caught up (lag 0)")
            for title, sql in SECTIONS:
                click.echo(f"\n-- {title}")
                click.echo(render(query(settings, sql), "table"), nl=False)
    finally:
        kafka_local.down(settings, purge=True)
        click.echo("== stopped the worker and the broker")
