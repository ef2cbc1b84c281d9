"""Bad environments get one clear line and exit 2, never a traceback; bad lines cost only themselves."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, Stack, free_port

DEAD = "127.0.0.1:1"  # nothing listens on port 1


def _cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "verb",
    [
        ["worker"],
        ["publish", "deploy/samples/hezhuang-sample.jsonl"],
        ["tail", "alarms", "--max", "1"],
        ["lag"],
        ["reset-offsets", "--yes"],
        ["deadletter", "list"],
        ["simulate", "--days", "0.01"],
    ],
    ids=lambda v: v[0],
)
def test_every_broker_verb_without_a_broker_says_where_and_how_to_start_one(verb: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "ALARMFLOW_KAFKA_BOOTSTRAP": DEAD, "ALARMFLOW_PHONE_HMAC_KEY": "k" * 32}
    env["ALARMFLOW_VAR_DIR"] = str(tmp_path)
    done = _cli(*verb, env=env)
    assert done.returncode == 2, done.stderr
    line = _one_line(done)
    assert DEAD in line and "alarmflow kafka up" in line


def test_a_missing_short_or_unreadable_phone_key_is_one_line(stack: Stack, tmp_path: Path) -> None:
    base = {k: v for k, v in stack.env.items() if not k.startswith("ALARMFLOW_PHONE_HMAC_KEY")}
    for extra, expected in [
        ({}, "set ALARMFLOW_PHONE_HMAC_KEY"),
        ({"ALARMFLOW_PHONE_HMAC_KEY": "short"}, "holds 5 bytes; a phone HMAC key needs at least 16"),
        ({"ALARMFLOW_PHONE_HMAC_KEY_FILE": str(tmp_path)}, "ALARMFLOW_PHONE_HMAC_KEY_FILE: cannot read"),
    ]:
        done = _cli("worker", env={**base, **extra})
        assert done.returncode == 2, done.stderr
        assert expected in _one_line(done)


def test_an_unwritable_output_file_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ALARMFLOW_VAR_DIR": str(tmp_path)}
    done = _cli("simulate", "--days", "0.01", "--out", str(tmp_path / "no" / "such" / "dir" / "x.jsonl"), env=env)
    assert done.returncode == 2
    assert "No such file or directory" in _one_line(done)


def test_one_line_that_is_not_utf8_is_rejected_and_the_rest_published(stack: Stack, tmp_path: Path) -> None:
    sample = (REPO / "deploy" / "samples" / "hezhuang-sample.jsonl").read_bytes().splitlines(keepends=True)
    good = len([line for line in sample if line.strip()])
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(sample[:3]) + b'{"type": "\xff\xfe"}\n' + b"".join(sample[3:]))
    done = _cli("publish", str(mixed), env=stack.env)
    assert done.returncode == 1, done.stderr
    assert f"published {good} events" in done.stdout
    assert "line 4: Undecodable: not UTF-8 text: byte 0xff at column 11" in done.stderr
    assert "Traceback" not in done.stderr


def test_query_never_opens_the_database_another_process_holds(stack: Stack) -> None:
    path = stack.settings.var_dir / "clickhouse"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from projections.client import connect; connect('chdb://{path}'); print('held', flush=True); "
            "import time; time.sleep(60)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = _cli("query", "SELECT 1", env=stack.env)
        assert done.returncode == 2, done.stderr
        line = _one_line(done)
        assert f"held by another process (pid {holder.pid})" in line and stack.settings.clickhouse_http_url in line
    finally:
        holder.kill()
        holder.wait()
    done = _cli("query", "SELECT 1 AS one", "--format", "json", env=stack.env)  # nobody holds it now
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"one": 1}]


@pytest.fixture
def failing_endpoint() -> Iterator[int]:
    """Something on the worker's ClickHouse HTTP port that answers every request with a 500."""

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_error(500, "boom")

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()


def test_query_says_so_when_the_workers_endpoint_fails_and_does_not_open_the_database(
    stack: Stack, failing_endpoint: int
) -> None:
    env = {**stack.env, "ALARMFLOW_CLICKHOUSE_HTTP_PORT": str(failing_endpoint)}
    started = time.monotonic()
    done = _cli("query", "SELECT 1", env=env)
    assert done.returncode != 0
    assert "failed the query" in done.stderr and "500" in done.stderr, done.stderr
    assert time.monotonic() - started < 60
    assert not (stack.settings.var_dir / "clickhouse").exists()  # never opened alongside the worker


def test_a_cluster_id_that_starts_with_a_dash_formats_the_storage(tmp_path: Path) -> None:
    """One random cluster id in 64 starts with "-" (URL-safe base64): the storage tool must not take it for an
    option (it did, and `make demo` failed once in 64 starts)."""
    from streams import kafka_local
    from streams.settings import Settings

    shared = Settings.from_env()
    paths = kafka_local.BrokerPaths(tmp_path)
    (tmp_path / "libs").symlink_to(kafka_local.BrokerPaths(shared.kafka_home.resolve()).libs)
    settings = Settings.from_env({"ALARMFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})
    kafka_local._write_config(settings, paths)
    kafka_local.format_storage(paths, "-Yt3ZbWvQ9uQ3m1aT0bq5w")
    meta = (paths.data / "meta.properties").read_text()
    assert "cluster.id=-Yt3ZbWvQ9uQ3m1aT0bq5w" in meta, meta
