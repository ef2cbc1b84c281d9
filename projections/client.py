"""One client library, two backends: ``chdb:///path`` (embedded, the default) or ``http(s)://``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client


def connect(dsn: str) -> Client:
    """Open the ClickHouse named by ``dsn``; an embedded path is created on first use."""
    if dsn.startswith("chdb:"):
        path = urlsplit(dsn).path
        if path:
            Path(path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)


def describe(dsn: str) -> str:
    """The DSN without credentials, for logs."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
