"""Analysts' read-only queries on the embedded database: connections of their own, limits the engine enforces.

chDB hosts one engine per process but any number of connections to it, and runs queries from different
connections in parallel with the GIL released (measured: bench/figures/isolation.py). So analysts get their own
threads and connections, never the projector's single ClickHouse thread. Each analyst connection is opened with
``readonly=1`` and the limits as its session settings: from then on the engine itself refuses every write, DDL,
``SYSTEM``, ``file()``/``url()`` table function and every change of a setting (164 READONLY), so neither the limits
nor read-only-ness can be lifted by a query, a ``SET`` or a ``SETTINGS`` clause.

ClickHouse governs a few statements by grants rather than by ``readonly``, and chDB's only user holds every grant:
on a ``readonly=1`` connection it still runs ``SYSTEM STOP MERGES`` (also TTL MERGES, MOVES, DISTRIBUTED SENDS) and
``KILL QUERY``, which would stop or kill the projector's own work. So each statement is first parsed by the engine
(``formatQuerySingleLine``, which also refuses several statements in one request, as ClickHouse's HTTP interface
does) and those kinds get the error ClickHouse gives a user without the grant (497 ACCESS_DENIED).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import chdb

from projections.errors import EngineRefused

ERROR_CODE = re.compile(r"Code: (\d+)\.")
GRANTED_ONLY = ("SYSTEM", "KILL", "BACKUP", "RESTORE")  # statement kinds ClickHouse allows by grant, not readonly
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KINDS_KEPT = 1024  # statement texts whose kind is remembered


@dataclass(frozen=True)
class AnalystLimits:
    """What one analyst query may use; the engine stops it with its own error past any of them."""

    max_execution_time_s: int = 60
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 512 * 1024 * 1024
    max_memory_usage: int = 2 * 1024 * 1024 * 1024
    max_threads: int = 1  # the projector keeps the other cores (bench/figures/isolation.py)

    def session(self) -> dict[str, str]:
        """The analyst connections' session settings; ``readonly`` goes last so the limits are set before it."""
        return {
            "max_execution_time": str(self.max_execution_time_s),
            "max_result_rows": str(self.max_result_rows),
            "max_result_bytes": str(self.max_result_bytes),
            "result_overflow_mode": "throw",
            "max_memory_usage": str(self.max_memory_usage),
            "max_threads": str(self.max_threads),
            # The engine runs analyst queries' threads at the lowest CPU priority (nice 19; it needs CAP_SYS_NICE,
            # else it is a no-op): on a busy machine the projector's writes go first. The nice is reset after each
            # query, so no Python thread holds the GIL at nice 19.
            "os_thread_priority": "19",
            # As in a ClickHouse user profile: the HTTP layer compresses when the client's Accept-Encoding asks.
            "enable_http_compression": "1",
            "readonly": "1",
        }


@dataclass(frozen=True)
class Answer:
    """The bytes chDB produced in the requested format, and what the query read."""

    body: bytes
    summary: dict[str, str]


class AnalystEngine:
    """A few threads, each with its own read-only chDB connection to the database the projector writes."""

    def __init__(self, path: Path, limits: AnalystLimits, threads: int = 2) -> None:
        self._connection_string = f"{path}?{urlencode(limits.session())}"
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="analyst")

    def run(
        self,
        sql: str,
        fmt: str,
        params: Mapping[str, str] | None = None,
        settings: Mapping[str, str] | None = None,
        database: str = "default",
    ) -> Answer:
        """Run one statement on this thread's connection; ``fmt`` applies unless the SQL has its own FORMAT."""
        conn = self._connection()
        try:
            if not DATABASE_NAME.fullmatch(database):
                raise EngineRefused(81, f"Code: 81. DB::Exception: Database {database} does not exist. (UNKNOWN_DATABASE)")  # noqa: E501
            _check_kind(self._kind(conn, sql))
            conn.query(f"USE {database}")
            for name, value in (settings or {}).items():
                # The engine decides: on a readonly=1 session it accepts a value only if it changes nothing.
                if not SETTING_NAME.fullmatch(name):
                    raise EngineRefused(115, f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                conn.query(f"SET {name} = {_quote(value)}")
            result = conn.query(sql, fmt, params=dict(params or {}))
        except RuntimeError as exc:  # chdb's ChdbError is a RuntimeError
            raise refused(str(exc)) from None
        return Answer(result.bytes() or b"", _summary(result))

    def _kind(self, conn: Any, sql: str) -> str:
        """statement_kind, remembered by text: dashboards and pollers send the same statements again and again, and
        the parse was most of a small query's cost (measured: 60% of the analyst threads' samples under a 20/s
        poll). Only parses that succeeded are kept; at KINDS_KEPT texts the memory starts over."""
        kind = self._kinds.get(sql)
        if kind is None:
            kind = statement_kind(conn, sql)
            with self._lock:
                if len(self._kinds) >= KINDS_KEPT:
                    self._kinds.clear()
                self._kinds[sql] = kind
        return kind

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = chdb.connect(self._connection_string)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


def statement_kind(conn: Any, sql: str) -> str:
    """The statement's first keyword, as the engine parses it (it refuses a text of several statements)."""
    # A String parameter's value is read in ClickHouse's escaped form.
    escaped = sql.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    canonical = conn.query("SELECT formatQuerySingleLine({q:String})", "TabSeparatedRaw", params={"q": escaped})
    return str(canonical.bytes().decode().split(" ", 1)[0].strip().upper())


def _check_kind(kind: str) -> None:
    if kind in GRANTED_ONLY:
        raise EngineRefused(
            497,
            f"Code: 497. DB::Exception: analyst: Not enough privileges. To execute this query, it's necessary to "
            f"have a {kind} grant, which analysts do not have. (ACCESS_DENIED)",
        )


def refused(message: str) -> EngineRefused:
    """chDB's error text, starting at ClickHouse's ``Code: N.``, with its code."""
    start = message.find("Code: ")
    text = message[start:].strip() if start >= 0 else message.strip()
    match = ERROR_CODE.match(text)
    return EngineRefused(int(match.group(1)) if match else 1002, text)  # 1002: UNKNOWN_EXCEPTION


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _summary(result: Any) -> dict[str, str]:
    """ClickHouse's X-ClickHouse-Summary keys; chDB counts the rows it read from storage and the rows it returned."""
    return {
        "read_rows": str(result.storage_rows_read()),
        "read_bytes": str(result.storage_bytes_read()),
        "written_rows": "0",
        "written_bytes": "0",
        "total_rows_to_read": str(result.storage_rows_read()),
        "result_rows": str(result.rows_read()),
        "result_bytes": str(result.size()),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }
