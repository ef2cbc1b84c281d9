"""Analyst queries: through the running worker when it holds the embedded database, else direct."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from typing import Any

from projections.client import connect
from projections.errors import QueryRejected
from projections.query import QueryResult, run_readonly
from streams.settings import Settings


def query(settings: Settings, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
    """chDB lets one process open a path, so ask the worker first; with a server DSN go direct."""
    if settings.dsn.startswith("chdb:"):
        via_worker = _via_worker(settings, sql, parameters or {})
        if via_worker is not None:
            return via_worker
    return run_readonly(connect(settings.dsn), sql, parameters)


def _via_worker(settings: Settings, sql: str, parameters: dict[str, Any]) -> QueryResult | None:
    body = json.dumps({"sql": sql, "parameters": parameters}).encode()
    # The URL is our own loopback endpoint built from settings, always http.
    request = urllib.request.Request(  # noqa: S310
        f"{settings.web_url}/query", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            raise QueryRejected(json.loads(exc.read()).get("error", "rejected")) from None
        return None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    return QueryResult(payload["columns"], payload["rows"])


def render(result: QueryResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            [dict(zip(result.columns, row, strict=True)) for row in result.rows], ensure_ascii=False, indent=1
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        return out.getvalue()
    if not result.rows:
        return "(no rows)\n"
    from rich.console import Console
    from rich.table import Table

    table = Table(*result.columns, show_lines=False)
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console = Console(record=True, width=200)
    with console.capture() as capture:
        console.print(table)
    return capture.get()
