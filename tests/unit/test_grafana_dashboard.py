"""The provisioned Grafana dashboard: well-formed, on the provisioned datasource, and every query parses (promtool).
That it only uses metrics the worker exports, and that each query answers, is checked against a real Prometheus
scraping a worker in tests/integration/test_metrics.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.promql import DASHBOARD, REPO, dashboard_targets, metric_names, rule_exprs

PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"


def test_the_dashboard_is_on_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    uid = re.search(r"^\s+uid: (\S+)$", (PROVISIONING / "datasources" / "prometheus.yml").read_text(), re.MULTILINE)
    assert uid is not None
    assert dashboard["uid"] == "alarmflow" and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": uid.group(1)}, panel["title"]
    provider = (PROVISIONING / "dashboards" / "alarmflow.yml").read_text()
    assert "path: /etc/grafana/dashboards" in provider
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in (REPO / "docker-compose.yml").read_text()


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression; a broken one fails the check."""
    assert shutil.which("promtool"), "promtool is missing: run `make prometheus-tools`"
    targets = dashboard_targets()
    rules = [{"record": f"alarmflow:dashboard_query_{i}", "expr": expr} for i, (_, expr) in enumerate(targets)]
    for name, exprs in (
        ("good", rules),
        ("broken", [*rules, {"record": "alarmflow:broken", "expr": "sum(rate(x[1m])"}]),
    ):
        path = tmp_path / f"{name}.yml"
        path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": exprs}]}))  # JSON is YAML
        result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
        if name == "good":
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"SUCCESS: {len(targets)} rules found" in result.stdout
        else:
            assert result.returncode != 0, "promtool accepted a query that does not parse"


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (table, le) (rate(alarmflow_clickhouse_insert_seconds_bucket{job="a"}[1m])))'
        " / ignoring (stage) group_left sum(increase(alarmflow_dispatches_total[1h] offset 5m)) or vector(0)"
    )
    assert metric_names(expr) == {"alarmflow_clickhouse_insert_seconds_bucket", "alarmflow_dispatches_total"}
    assert {name for name, _ in rule_exprs()} == {
        "AlarmflowWorkerDown",
        "AlarmflowConsumerLagGrowing",
        "AlarmflowWatermarkStalled",
        "AlarmflowDeadLetters",
        "AlarmflowBreachRate",
    }
    assert all(metric_names(expr) for _, expr in [*rule_exprs(), *dashboard_targets()])
