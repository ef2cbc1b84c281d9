"""A real Prometheus server scrapes a worker on the real broker; the values read back through its HTTP API match
the known input, ClickHouse and the broker's own offsets."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import Codec
from streams.kafka_admin import consumer_lag
from tests.factories import alarm
from tests.integration.conftest import REPO, Stack, free_port
from tests.promql import dashboard_targets, metric_names, rule_exprs

CODEC = Codec()
CASES = 6
RETRIES = 5  # the first ClickHouse writes fail (ALARMFLOW_FAILPOINTS): the projector stalls and retries


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql, **({} if at is None else {"time": f"{at:.3f}"})}
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def values(self, promql: str, *labels: str, at: float | None = None) -> dict[tuple[str, ...], float]:
        return {tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1]) for s in self.query(promql, at)}

    def wait_for(self, promql: str, expected: float, timeout: float = 60) -> None:
        deadline, got = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            result = self.query(promql)
            got = float(result[0]["value"][1]) if result else None
            if got == expected:
                return
            time.sleep(0.5)
        raise AssertionError(f"{promql}: {got}, expected {expected}\n{self.log.read_text()[-3000:]}")


def start_prometheus(tmp_path: Path, target_port: int) -> Iterator[Prometheus]:
    """Debian's prometheus (make prometheus-tools), its own config and data, loopback only, scraping every second."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "deploy/prometheus/alerts.yml")],
                "scrape_configs": [
                    {"job_name": "alarmflow", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
                ],
            }
        )
    )
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "prometheus not ready after 60 s:\n" + log.read_text()
            time.sleep(0.3)
    try:
        yield Prometheus(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[Prometheus]:
    yield from start_prometheus(tmp_path, stack.settings.web_port)


def _noise_alarm(case_id: str, at: datetime) -> dict[str, Any]:
    a = alarm(random.Random(case_id), case_id, at)
    a.update({"category": "noise.renovation", "police_matter": "NON_POLICE", "priority": 3})
    a["location"] = {"address": "云上澜苑 3幢", "lat": None, "lon": None, "street_code": "330114005", "grid_code": None}
    return a


def test_prometheus_reads_what_the_input_and_the_broker_say(
    stack: Stack, prometheus: Prometheus, short_district: Path
) -> None:
    now = datetime.now(UTC)
    alarms = [_noise_alarm(f"MET-{i}", now) for i in range(CASES)]  # dispatched, then never accepted
    valid = CODEC.encode(CODEC.from_json(alarms[0]))
    poison = {
        "Undecodable": [(b"A1", b'{"not": "avro"}')] * 3,
        "UnknownSchema": [(b"A2", b"\xc3\x01" + b"\xff" * 8 + b"\x02")],
        "TooLarge": [(b"A3", valid + b"\x00" * 70_000)] * 2,
    }
    stack.publish(alarms)
    stack.send_raw("alarms", [record for records in poison.values() for record in records])
    stack.start_worker(
        ALARMFLOW_DISTRICT_DIR=str(short_district),
        ALARMFLOW_SLA_LATENESS_MS="1000",
        ALARMFLOW_FAILPOINTS=f"sink.write=transient:{RETRIES}",
    )
    s = stack.settings
    breaches_topic, alarms_topic, projector = s.topic("sla-breaches"), s.topic("alarms"), f"{s.app_id}-projector"

    # Every stage of every case breaches (nobody accepts); wait for them in ClickHouse, then for a scrape.
    deadline = time.monotonic() + 120
    while stack.scalar("SELECT count() FROM sla_breaches") < 3 * CASES:
        assert time.monotonic() < deadline, stack.worker_log()
        time.sleep(1)
    stack.caught_up()
    prometheus.wait_for("sum(alarmflow_sla_breaches_total)", 3 * CASES)
    prometheus.wait_for(f'sum(alarmflow_records_in_total{{group="{projector}", topic="{breaches_topic}"}})', 3 * CASES)
    prometheus.wait_for(
        f'sum(alarmflow_consumer_committed_offset{{group="{projector}", topic="{breaches_topic}"}})', 3 * CASES
    )

    # Breaches by stage: the rows in sla_breaches, and the input (every stage of every case).
    by_stage = prometheus.values("alarmflow_sla_breaches_total", "stage")
    rows = stack.sql("SELECT stage, count() FROM sla_breaches GROUP BY stage")
    assert (
        by_stage
        == {(stage,): float(n) for stage, n in rows}
        == {(st,): CASES for st in ("ACCEPT", "CONTACT", "ARRIVE")}
    )
    assert prometheus.values("alarmflow_dispatches_total") == {(): CASES}
    assert prometheus.values("sum(alarmflow_escalations_total)") == {
        (): stack.scalar("SELECT count() FROM reassignments")
    }
    delays = prometheus.values("alarmflow_breach_detection_delay_seconds_count", "stage")
    assert delays == by_stage

    # Dead letters by class: the input's poison, and the rows in deadletters.
    letters = prometheus.values("alarmflow_dead_letters_total", "class", "source_topic")
    assert letters == {(c, alarms_topic): float(len(r)) for c, r in poison.items()}
    assert letters == {
        (c, t): float(n)
        for c, t, n in stack.sql("SELECT error_class, source_topic, count() FROM deadletters GROUP BY ALL")
    }

    # Offsets: at one evaluation, lag is end minus committed on every partition of every group; on the
    # breaches topic (no clock records there) both agree with the broker, and the lag is 0.
    at = time.time()
    end = prometheus.values("alarmflow_topic_end_offset", "topic", "partition", at=at)
    committed = prometheus.values("alarmflow_consumer_committed_offset", "group", "topic", "partition", at=at)
    lag = prometheus.values("alarmflow_consumer_lag_records", "group", "topic", "partition", at=at)
    assert {g for g, _, _ in lag} == {s.app_id, projector}
    for (group, topic, partition), value in lag.items():
        assert value == end[(topic, partition)] - committed.get((group, topic, partition), 0), (group, topic, partition)
    broker = asyncio.run(consumer_lag(s.kafka_bootstrap, projector, [breaches_topic]))
    assert {(x.topic, str(x.partition)): float(x.end) for x in broker} == {
        k: v for k, v in end.items() if k[0] == breaches_topic
    }
    assert {(projector, x.topic, str(x.partition)): float(x.committed) for x in broker if x.committed is not None} == {
        k: v for k, v in committed.items() if k[:2] == (projector, breaches_topic)
    }
    assert sum(v for k, v in lag.items() if k[1] == breaches_topic and k[0] == projector) == 0

    # While ClickHouse failed, the projector's lag on alarms was the input: Prometheus saw it.
    stalled = prometheus.values(
        f'max_over_time(alarmflow_consumer_lag_records{{group="{projector}", topic="{alarms_topic}"}}[10m])',
        "partition",
    )
    assert sum(stalled.values()) >= CASES + sum(len(r) for r in poison.values())
    assert prometheus.values('alarmflow_clickhouse_errors_total{operation="write"}', "kind") == {
        ("transient",): RETRIES
    }
    assert prometheus.values("alarmflow_clickhouse_retries_total") == {(): RETRIES}

    # Projector: rows per table are the table's rows (one worker, one clean run).
    tables = prometheus.values("alarmflow_projector_rows_total", "table")
    for table in ("sla_breaches", "dispatches", "deadletters", "reassignments"):
        assert tables[(table,)] == stack.scalar("SELECT count() FROM {t:Identifier}", t=table), table
    inserts = prometheus.values("alarmflow_clickhouse_insert_seconds_count", "table")
    assert set(inserts) == {k for k, v in tables.items() if v > 0} and min(inserts.values()) >= 1

    # The case engine: every case waits for its acceptance, every deadline decided, the oldest overdue stage is
    # the first acceptance deadline, and each watermark trails the wall clock by at least the lateness.
    assert prometheus.values('sum(alarmflow_open_cases{stage="ACCEPT"})') == {(): CASES}
    assert prometheus.values("sum(alarmflow_open_cases)") == {(): CASES}
    assert prometheus.values("sum(alarmflow_pending_deadlines)") == {(): 0}
    first_deadline = stack.scalar("SELECT toUnixTimestamp64Milli(min(deadline)) FROM sla_breaches") / 1000
    oldest = prometheus.query("max(alarmflow_oldest_overdue_stage_age_seconds)")[0]["value"]
    sampled_at, age = float(oldest[0]), float(oldest[1])
    assert sampled_at - first_deadline - 5 <= age <= sampled_at - first_deadline + 5
    watermarks = prometheus.values("alarmflow_watermark_delay_seconds", "partition")
    assert watermarks and min(watermarks.values()) >= 1.0

    # The process and the event loop.
    assert prometheus.values("process_resident_memory_bytes")[()] > 10_000_000
    assert prometheus.values("alarmflow_event_loop_lag_seconds_count")[()] > 0
    assert prometheus.values('up{job="alarmflow"}') == {(): 1}

    # The alert rules run on this server: every case breached every stage, so the breach rate fires per stage;
    # nothing else does.
    rules = [r for group in prometheus.api("rules")["groups"] for r in group["rules"]]
    assert sorted(r["name"] for r in rules) == sorted(name for name, _ in rule_exprs())
    deadline = time.monotonic() + 30
    while {r["name"]: r["health"] for r in rules} != dict.fromkeys((r["name"] for r in rules), "ok"):
        assert time.monotonic() < deadline, rules
        time.sleep(1)
        rules = [r for group in prometheus.api("rules")["groups"] for r in group["rules"]]
    firing = prometheus.values('ALERTS{alertstate="firing"}', "alertname", "stage")
    assert firing == {("AlarmflowBreachRate", st): 1 for st in ("ACCEPT", "CONTACT", "ARRIVE")}

    # The dashboard and the rules select only metrics the worker exports, and every dashboard query answers.
    exported = set(prometheus.api('label/__name__/values?match[]={job="alarmflow"}'))
    for title, expr in [*dashboard_targets(), *rule_exprs()]:
        missing = metric_names(expr) - exported - {"ALERTS"}
        assert not missing, f"{title}: {sorted(missing)} not exported"
    for title, expr in dashboard_targets():
        assert prometheus.query(expr), f"{title}: {expr} answered nothing"
