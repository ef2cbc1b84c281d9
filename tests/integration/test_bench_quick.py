"""``python -m bench --quick`` against the test broker: every figure's code path runs and reports.

No timing thresholds: the machines are shared and noisy, so figures are reported, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Each figure's statistics (median/min/max of repetitions) that must be there and positive.
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "raw": [("throughput",)],
    "decode": [("codec",), ("bare",), ("ratio",)],
    "worker": [("throughput",), ("startup_s",), ("elapsed_s",)],
    "sink": [
        ("rows_per_s", "sink"),
        ("rows_per_s", "arrow"),
        ("rows_per_s", "values"),
        ("sink_vs_arrow",),
        ("sink_vs_values",),
    ],
    "latency": [("queryable_ms", "p50"), ("queryable_ms", "p99"), ("sla_ms", "p50"), ("sla_ms", "p99")],
    "scale": [("one_worker",), ("two_workers",), ("ratio",)],
    "isolation": [("alone_events_per_s",), ("with_analyst_events_per_s",), ("ratio",)],
    "memory": [],
    "flat": [],
}


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        assert isinstance(node, dict) and key in node, f"missing {'.'.join(path)}"
        node = node[key]
    return node


def _positive_stats(stats: dict[str, Any], where: str) -> None:
    for key in ("median", "min", "max"):
        assert stats[key] > 0, f"{where}.{key} = {stats[key]}"
    assert stats["n"] >= 3 and len(stats["values"]) == stats["n"], where


def test_quick_bench_reports_every_figure(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=os.environ,
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    [path] = tmp_path.glob("bench-quick-*.json")
    data = json.loads(path.read_text())

    assert data["mode"] == "quick" and not data.get("interrupted")
    assert data["broker"]["started_by_bench"] is False  # it used the broker the environment names
    machine = data["machine"]
    assert machine["cpu_model"] and machine["cores"] > 0 and machine["ram_gb"] > 0
    assert data["input"]["messages"] == data["sizes"]["events"] > 0
    assert data["workload"]["name"] == "street" and data["workload"]["streets"] == 1  # the default, as before

    for name, paths in REQUIRED.items():
        figure = data["figures"][name]
        assert "error" not in figure, f"{name}: {figure['error']}"
        headline = figure["headline"]
        assert headline["value"] > 0 and headline["unit"], name
        for path in paths:
            _positive_stats(_at(figure, path), f"{name}.{'.'.join(path)}")

    worker = data["figures"]["worker"]
    assert worker["ratio_to_raw"] > 0 and worker["messages"] == data["input"]["messages"]
    assert worker["profile"]["busy_s"] > 0 and worker["profile"]["share_of_busy_by_package"]
    latency = data["figures"]["latency"]
    assert latency["offered_events_per_s"] > 0 and latency["sla_ms"]["pooled"]["samples"] > 0
    flat = data["figures"]["flat"]  # the agents, the projector and both, each over the whole backlog
    assert set(flat["runs"]) == {"agents", "projector", "split"}
    assert {mode: set(run["by_role"]) for mode, run in flat["runs"].items()} == {
        "agents": {"agents"},
        "projector": {"projector"},
        "split": {"agents", "projector"},
    }
    for run in flat["runs"].values():
        for c in run["by_role"].values():  # each process against its own group's reads
            assert c["reads"] > 0 and c["cpu_us_per_read_first_10pct"] > 0 and c["cpu_us_per_read_last_10pct"] > 0
            deciles = c["cpu_us_per_read_by_decile"]
            assert len(deciles) == 10 and [deciles[0], deciles[-1]] == [
                c["cpu_us_per_read_first_10pct"],
                c["cpu_us_per_read_last_10pct"],
            ]
        assert run["ratio"] == max(c["ratio"] for c in run["by_role"].values())
    assert flat["worst_ratio"] == max(run["ratio"] for run in flat["runs"].values())
    reps = data["sizes"]["repetitions"]
    seen = data["figures"]["scale"]["rebalances_while_measured"]  # scraped from every worker's /metrics
    assert len(seen["one_worker"]) == len(seen["two_workers"]) == reps and all(n >= 0 for n in seen["two_workers"])
    idle = data["figures"]["scale"]["idle_lag"]  # what "caught up" allowed for: the workers' lag from their own ticks
    assert len(idle["one_worker"]) == len(idle["two_workers"]) == reps and all(n >= 0 for n in idle["two_workers"])
    curve = latency["curve"]  # one point per share of the worker's median, the headline first, each measured
    assert [c["share_of_worker_median"] for c in curve] == [0.5, 0.1]
    assert curve[0]["offered_events_per_s"] == latency["offered_events_per_s"] > curve[1]["offered_events_per_s"]
    assert all(c["queryable_p99_ms"] > 0 and c["sla_p99_ms"] > 0 for c in curve), curve
    memory = data["figures"]["memory"]
    assert memory["open"]["open_cases"] > 0 and memory["open"]["rss_open_mb"] > 0
    assert memory["closed"]["closed_cases"] == data["sizes"]["memory_closed_cases"]
    assert all(s["rss_mb"] > 0 for s in memory["closed"]["samples"])

    floor = data["figures"]["floor"]
    assert "error" not in floor, floor["error"]
    assert all(v > 0 for v in floor["unit_costs_us"].values()) and all(v > 0 for v in floor["parts_us"].values())
    assert floor["per_input"]["reads"] >= 1 and floor["per_input"]["writes"] > 0 and floor["per_input"]["rows"] > 0
    assert floor["ratio"] == round(floor["worker_us_per_input"] / floor["floor_us_per_input"], 2)
    framework = floor["framework"]
    assert framework["faust_agent_read_per_msg_us"] > 0 and framework["agent_reads_per_input"] >= 1
    assert framework["faust_design_floor_us"] > 0

    metrics = {t["metric"]: t for t in data["targets"]}
    isolation = data["figures"]["isolation"]
    assert sum(isolation["analyst_queries_answered"]) > 0, isolation  # the analyst loop did run
    assert len(metrics) == 11
    for target in metrics.values():
        assert target["value"] > 0 and target["met"] in (True, False), target
        if not target["met"]:
            assert target["missed_by_factor"] > 1 and target["why"], target
