"""One client library, two backends: ``chdb:///path`` (embedded, the default) or ``http(s)://``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from projections.errors import DatabaseBusy

LOCK_FILE = ".alarmflow.lock"
_held: dict[Path, int] = {}  # embedded database path → the lock's file descriptor, kept for the process's life


def connect(dsn: str) -> Client:
    """Open the ClickHouse named by ``dsn``; an embedded path is created on first use and locked to this process.

    chDB lets one process open a path. The lock (released by the OS however the process ends) makes a
    second opener fail with a clear DatabaseBusy instead of a corrupt or half-open database."""
    path = embedded_path(dsn)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        _lock(path)
    # Every timestamp comes back with its zone: UTC columns as UTC, toTimeZone(…, 'Asia/Shanghai') as +08:00.
    return clickhouse_connect.get_client(dsn=dsn, tz_mode="aware")


@contextmanager
def opened(dsn: str) -> Iterator[Client]:
    """A client for one piece of work: closed after it, and an embedded database's lock released, so that a
    worker started later in the same session can open the database."""
    client = connect(dsn)
    try:
        yield client
    finally:
        client.close()
        path = embedded_path(dsn)
        fd = _held.pop(path, None) if path is not None else None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock


def embedded_path(dsn: str) -> Path | None:
    if not dsn.startswith("chdb:"):
        return None
    path = urlsplit(dsn).path
    return Path(path).resolve() if path else None


def _lock(path: Path) -> None:
    if path in _held:
        return
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DatabaseBusy(f"the embedded database {path} is held by another process (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[path] = fd


def describe(dsn: str) -> str:
    """The DSN without credentials, for logs."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
