"""Analyst queries: through the running worker when it holds the embedded database, else direct."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from typing import Any

from projections.client import opened
from projections.errors import DatabaseBusy, QueryRejected
from projections.query import QueryResult, run_readonly
from streams.settings import Settings


def query(settings: Settings, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
    """chDB lets one process open a path: ask the worker that holds it; with a server DSN go direct.

    The database is opened here only when no worker answers and no other process holds it."""
    if settings.dsn.startswith("chdb:"):
        via_worker = _via_worker(settings, sql, parameters or {})
        if via_worker is not None:
            return via_worker
    try:
        with opened(settings.dsn) as client:
            return run_readonly(client, sql, parameters)
    except DatabaseBusy as exc:
        raise DatabaseBusy(f"{exc}, and no worker answers at {settings.web_url}/query") from None


def _via_worker(settings: Settings, sql: str, parameters: dict[str, Any]) -> QueryResult | None:
    """The worker's answer; None only when nothing listens there (then nobody may hold the database)."""
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
        failed = f"HTTP {exc.code} {exc.reason}"
        raise QueryRejected(f"the worker at {settings.web_url} failed the query: {failed}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None
        raise QueryRejected(f"the worker at {settings.web_url} did not answer: {exc.reason}") from None
    except ConnectionRefusedError:
        return None
    except (ConnectionError, TimeoutError) as exc:
        raise QueryRejected(f"the worker at {settings.web_url} did not answer: {exc}") from None
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
