"""The alert rules (deploy/prometheus/alerts.yml) through Debian's promtool (make prometheus-tools): they load, each
fires on the series of alerts.test.yml that must fire and stays quiet on those that must not, and the tests notice
when a rule is changed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES, TESTS = RULES_DIR / "alerts.yml", RULES_DIR / "alerts.test.yml"
ALERTS = (
    "AlarmflowWorkerDown",
    "AlarmflowConsumerLagGrowing",
    "AlarmflowWatermarkStalled",
    "AlarmflowDeadLetters",
    "AlarmflowBreachRate",
)


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    assert shutil.which("promtool"), "promtool is missing: run `make prometheus-tools`"
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def test_the_rules_load() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout
    assert re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.MULTILINE) == list(ALERTS)


def test_each_rule_fires_where_it_must_and_not_elsewhere() -> None:
    result = promtool("test", "rules", TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    text = TESTS.read_text()
    for alert in ALERTS:
        cases = re.findall(rf"alertname: {alert}\n\s+exp_alerts:(.*)", text)
        assert any(c.strip() == "[]" for c in cases), f"{alert}: no evaluation where it must stay quiet"
        assert any(c.strip() == "" for c in cases), f"{alert}: no evaluation where it must fire"


# One change per rule that the tests must catch: a rule that fires too early, too often or never.
MUTATIONS = {
    "AlarmflowWorkerDown": ('up{job="alarmflow"} == 0', 'up{job="alarmflow"} == 1'),
    "AlarmflowConsumerLagGrowing": ("(alarmflow_consumer_lag_records) > 100", "(alarmflow_consumer_lag_records) > 10"),
    "AlarmflowWatermarkStalled": ("[5m])) == 0", "[5m])) <= 5"),
    "AlarmflowDeadLetters": ("* 60 > 1", "* 60 > 10"),
    "AlarmflowBreachRate": (") > 0.2", ") > 0.05"),
}


@pytest.mark.parametrize("alert", ALERTS)
def test_a_changed_rule_fails_its_test(alert: str, tmp_path: Path) -> None:
    old, new = MUTATIONS[alert]
    rules = RULES.read_text()
    assert rules.count(old) == 1, f"{alert}: {old!r} is not in the rules once"
    (tmp_path / RULES.name).write_text(rules.replace(old, new))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    result = promtool("test", "rules", TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, f"{alert}: the tests did not notice {old!r} -> {new!r}"
    assert f"alertname: {alert}" in result.stdout + result.stderr
