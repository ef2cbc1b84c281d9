"""`make demo` as a smoke test at a reduced size, on its own broker and ports: the report is printed, the
page is written, the stream equals the batch recount, and nothing is left running, even after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.demo import demo_settings
from streams.query_client import query
from streams.settings import Settings
from tests.integration.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMFLOW_")}
    return {
        **env,
        "ALARMFLOW_VAR_DIR": str(tmp_path),
        "ALARMFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "ALARMFLOW_KAFKA_CONTROLLER_PORT": str(free_port()),
        "ALARMFLOW_WEB_PORT": str(free_port()),
        "ALARMFLOW_CLICKHOUSE_HTTP_PORT": str(free_port()),
    }


def _leftovers(tmp_path: Path) -> list[str]:
    """Processes whose command line names this demo's directory (the broker and the worker would)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            mine = str(tmp_path) in cmdline or str(tmp_path).encode() in environ
            if mine and int(proc.name) != os.getpid():
                found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_the_demo_prints_the_report_writes_the_page_stays_up_with_the_board_and_stops_everything(
    tmp_path: Path,
) -> None:
    html = tmp_path / "report.html"
    env = _demo_env(tmp_path)
    args = ["demo", "--days", "2", "--play-seconds", "8", "--html", str(html), "--stay"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 900
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("== staying up") or time.monotonic() > deadline:
                break
        out = "".join(lines)
        board = f"http://127.0.0.1:{env['ALARMFLOW_WEB_PORT']}/board"
        assert f"== the command room's live board: {board}" in out, out[-5000:]
        assert "== staying up" in out, out[-5000:]
        for heading in ("SLA per stage", "Success rate", "Outcome mix", "Hotspot agenda", "Dead letters"):
            assert heading in out, heading
        assert "0 difference(s) between the stream and a batch recount" in out, out[-3000:]
        page = html.read_text(encoding="utf-8")
        assert page.count("<svg") == 4 and "<script" not in page and "Hotspot agenda" in page
        # Still up after the report: the board answers with the simulated days.
        snapshot = json.loads(urllib.request.urlopen(f"{board}.json", timeout=30).read())
        assert [s["stage"] for s in snapshot["compliance"]] == ["accept", "contact", "arrive"], snapshot
        settings = demo_settings(Settings.from_env(env))  # the demo worker's, ClickHouse HTTP port included
        letters = query(settings, "SELECT count() FROM v_deadletters").rows[0][0]
        assert snapshot["deadletters"]["total"] == letters
        assert "<html" in urllib.request.urlopen(board, timeout=30).read().decode()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        assert "stopped the workers and the broker" in rest, rest[-3000:]
        assert proc.returncode == 0, rest[-3000:]  # Ctrl-C is how a --stay demo ends
    finally:
        if proc.poll() is None:  # a failed assertion above: stop the demo all the same
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
    assert _leftovers(tmp_path) == []


def test_ctrl_c_during_the_demo_leaves_nothing_running(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", "--days", "2", "--play-seconds", "60"],
        env=_demo_env(tmp_path),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("== simulating") or time.monotonic() > deadline:
            break
    assert any(x.startswith("== simulating") for x in lines), "".join(lines)
    time.sleep(3)  # mid-simulation, with the broker and the worker running
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert "stopped the workers and the broker" in rest, rest[-3000:]
    assert proc.returncode != 0  # aborted, not a success
    assert _leftovers(tmp_path) == []
