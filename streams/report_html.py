"""``alarmflow report --html``: one self-contained page (inline SVG charts, no scripts, no links out)."""

from __future__ import annotations

import html
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # the object API: no pyplot state, no display backend

from projections.query import QueryResult
from streams.query_client import query
from streams.report import agenda, sections
from streams.settings import Settings

DAILY = """
SELECT local_day, sum(concluded) AS cases, sum(success) AS successes, sum(no_action_needed) AS no_action,
       if(cases - no_action = 0, NULL, successes / (cases - no_action)) AS success_rate
FROM v_outcome_daily GROUP BY local_day ORDER BY local_day
"""
HOTSPOT_SERIES = """
SELECT hotspot_id, occurred_at, count FROM hotspots ORDER BY hotspot_id, occurred_at
"""
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f0f0f0}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts figure{margin:0}
"""


def _figure(width: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, 3))
    return fig, fig.subplots()


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]


def _bar(title: str, labels: list[str], values: list[float], ylabel: str) -> str:
    fig, ax = _figure(5)
    ax.bar(labels, values, color="#4c72b0")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=20)
    return _svg(fig)


def _daily_chart(result: QueryResult) -> str:
    days = [date.fromisoformat(r[0]) for r in result.rows]
    fig, ax = _figure(7)
    ax.bar(days, [r[1] for r in result.rows], color="#a6bddb", label="concluded")
    ax.set_ylabel("cases concluded")
    ax2 = ax.twinx()
    ax2.plot(days, [r[4] for r in result.rows], color="#c44e52", marker="o", label="success rate")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("success rate")
    ax.set_title("Concluded cases and success rate by local day")
    fig.autofmt_xdate()
    return _svg(fig)


def _hotspot_chart(result: QueryResult) -> str:
    fig, ax = _figure(7)
    series: dict[str, list[tuple[datetime, int]]] = {}
    for hotspot_id, at, count in result.rows:
        series.setdefault(hotspot_id, []).append((datetime.fromisoformat(at), count))
    for n, (hotspot_id, points) in enumerate(sorted(series.items())):
        ax.step([p[0] for p in points], [p[1] for p in points], where="post", label=f"hotspot {n + 1}")
        _ = hotspot_id  # names are Chinese; the tables below carry them, the legend keeps to numbers
    ax.set_title("Hotspot counts in the rolling window")
    ax.set_ylabel("alarms in window")
    if series:
        ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _svg(fig)


def _table(result: QueryResult) -> str:
    if not result.rows:
        return "<p><em>no rows</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in result.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in result.rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(settings: Settings, path: Path, day: date) -> None:
    titled = sections(settings)
    by_title = dict(titled)
    stages = next(r for t, r in titled if t.startswith("SLA per stage"))
    mix = by_title["Outcome mix"]
    charts = [
        _bar(
            "SLA within target by stage",
            [r[0] for r in stages.rows],
            [r[5] or 0 for r in stages.rows],
            "met / (met + breached)",
        ),
        _bar("Outcome mix", [r[1] for r in mix.rows], [r[2] for r in mix.rows], "cases"),
        _daily_chart(query(settings, DAILY)),
        _hotspot_chart(query(settings, HOTSPOT_SERIES)),
    ]
    parts = [
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>alarmflow report</title>"
        f"<style>{STYLE}</style></head><body><h1>alarmflow: operational report</h1>",
        f"<p>Generated {datetime.now(UTC).isoformat(timespec='seconds')} "
        f"from {html.escape(settings.topic_prefix)}.</p>",
        "<div class='charts'>" + "".join(f"<figure>{c}</figure>" for c in charts) + "</div>",
        f"<h2>Hotspot agenda for {day.isoformat()} (联合会商)</h2>" + _table(agenda(settings, day)),
    ]
    parts += [f"<h2>{html.escape(title)}</h2>{_table(result)}" for title, result in titled]
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
