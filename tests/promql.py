"""The PromQL expressions the project ships (the Grafana dashboard, the alert rules) and the metric names in them."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "alarmflow.json"
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
# Grafana's interval variable, as Grafana would set it for a 1 s scrape interval and a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def dashboard_targets() -> list[tuple[str, str]]:
    """(panel title, expr) for every query of the dashboard, with Grafana's variables substituted."""
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], expr))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    """(alert, expr) for every alert rule; the rules file is plain enough to read without a YAML parser."""
    text = RULES.read_text()
    alerts = re.findall(r"- alert: (\w+)\n\s+expr: (\|\n(?:\s{10}.*\n)+|.*\n)", text)
    return [(name, expr.removeprefix("|").strip()) for name, expr in alerts]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords, labels or durations."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group(0) in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names
