"""Analyst queries: through the ClickHouse HTTP interface of the worker holding the embedded database, else direct."""

from __future__ import annotations

import csv
import io
import json
import socket
import time
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from projections.client import opened
from projections.errors import DatabaseBusy, QueryRejected
from projections.query import QueryResult, run_readonly
from streams.settings import Settings


def query(settings: Settings, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
    """chDB lets one process open a path: ask the worker that holds it, through its ClickHouse HTTP interface (the
    one analysts' tools use); with a server DSN go direct.

    The database is opened here only when no worker answers and no other process holds it."""
    if settings.dsn.startswith("chdb:") and settings.clickhouse_http_port:
        client = worker_client(settings)
        if client is not None:
            try:
                return run_readonly(client, sql, parameters)
            finally:
                client.close()
    try:
        with opened(settings.dsn) as client:
            return run_readonly(client, sql, parameters)
    except DatabaseBusy as exc:
        raise DatabaseBusy(f"{exc}, and no worker answers at {settings.clickhouse_http_url}") from None


def worker_client(settings: Settings, start_up_s: float = 30.0) -> Client | None:
    """A clickhouse-connect client of the worker's interface; None only when nothing listens (then nobody may hold
    the database).

    A worker whose web port answers but whose interface does not yet is still starting: wait for it a while."""
    deadline = time.monotonic() + start_up_s
    while not _listens(settings.clickhouse_http_port):
        if not _listens(settings.web_port) or time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    try:
        return clickhouse_connect.get_client(
            host="127.0.0.1",
            port=settings.clickhouse_http_port,
            username=settings.clickhouse_http_user,
            password=settings.clickhouse_http_secret(),
            tz_mode="aware",  # every timestamp with its zone, as the direct path gives them
            send_receive_timeout=max(120, settings.analyst_max_execution_s + 10),
        )
    except ClickHouseError as exc:
        raise QueryRejected(f"the worker at {settings.clickhouse_http_url} failed the query: {exc}") from None


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


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
