"""ClickHouse's HTTP interface, the part standard clients use, served by the process that holds the embedded database.

Every query runs on the analysts' own read-only chDB connections (projections.analyst); chDB produces the bytes in
the requested format and this module only carries them: authentication, the URL parameters and headers ClickHouse
reads, its response headers, compression, and its error text and status codes.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hmac
import json
import logging
import re
import socket
import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import lz4.block
import lz4.frame
from aiohttp import web
from clickhouse_cityhash.cityhash import CityHash128
from mode import Service

from projections.analyst import AnalystEngine
from projections.errors import EngineRefused

log = logging.getLogger(__name__)

# URL parameters the HTTP layer consumes itself (ClickHouse's HTTPHandler does the same); every other one that is not
# param_<name> is a setting, handed to the engine, which refuses any change a read-only user may not make.
TRANSPORT = frozenset(
    {
        "query", "user", "password", "database", "default_format", "query_id", "session_id", "session_timeout",
        "session_check", "compress", "decompress", "enable_http_compression", "http_zlib_compression_level",
        "buffer_size", "wait_end_of_query", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "client_protocol_version", "quota_key", "role", "cancel_http_readonly_queries_on_client_close",
        "http_response_buffer_size",
    }
)  # fmt: skip
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9]*)\s*(?:SETTINGS\b[^;]*)?;?\s*$", re.IGNORECASE)
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}
# ClickHouse's HTTPHandler maps these exception codes to HTTP statuses; everything else is 500.
STATUS = {
    516: 403, 192: 403, 193: 403, 497: 403, 164: 403,  # authentication, access, READONLY
    194: 401,  # REQUIRED_PASSWORD
    62: 400, 6: 400, 25: 400, 26: 400, 27: 400, 38: 400, 41: 400, 72: 400, 117: 400, 53: 400, 456: 400, 457: 400,
    60: 404, 81: 404, 46: 404, 47: 404, 50: 404, 73: 404, 115: 404,  # UNKNOWN_TABLE, _DATABASE, _FUNCTION, …
    159: 408,  # TIMEOUT_EXCEEDED
    48: 501,  # NOT_IMPLEMENTED
}  # fmt: skip
EXPOSED = (
    "X-ClickHouse-Query-Id,X-ClickHouse-Summary,X-ClickHouse-Server-Display-Name,X-ClickHouse-Format,"
    "X-ClickHouse-Timezone,X-ClickHouse-Exception-Code"
)


@dataclass(frozen=True)
class HttpConfig:
    """Where the interface listens and whom it lets in."""

    bind: str
    port: int
    user: str
    password: str


class ClickHouseHTTP(Service):
    """An aiohttp site of its own, started and stopped with the worker (registered with ``app.service``)."""

    def __init__(self, engine: AnalystEngine, config: HttpConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine, self.config = engine, config
        self._runner: web.AppRunner | None = None
        self._timezone, self._version = "UTC", ""

    async def on_start(self) -> None:
        answer = await self._run("SELECT timezone(), version()", "TabSeparated", {}, {}, "default")
        self._timezone, self._version = answer.body.decode().strip().split("\t")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/ping", _ping)
        app.router.add_route("*", "/replicas_status", _ping)
        app.router.add_route("*", "/", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.bind, self.config.port).start()
        where = f"http://{self.config.bind}:{self.config.port}"
        log.info("ClickHouse HTTP interface on %s (user %s)", where, self.config.user)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.get_running_loop().run_in_executor(None, self.engine.close)

    async def _run(self, sql: str, fmt: str, params: Mapping[str, str], settings: Mapping[str, str], db: str) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.engine.executor, self.engine.run, sql, fmt, params, settings, db)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query_id = request.query.get("query_id") or str(uuid.uuid4())
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": socket.gethostname(),
            "X-ClickHouse-Timezone": self._timezone,
            "Access-Control-Expose-Headers": EXPOSED,
        }
        try:
            form = await _form(request)
            if form is not None:
                body = form.pop("query", "").encode()
            else:
                body = _request_body(request.headers, await request.read())
            sql = _query_text(request, body)
            if sql is None:  # a health check, answered without credentials as ClickHouse does
                return web.Response(text="Ok.\n", headers=headers)
            self._authenticate(request)
            fields = {**request.query, **(form or {})}
            params = {k[6:]: v for k, v in fields.items() if k.startswith("param_")}
            settings = {k: v for k, v in request.query.items() if k not in TRANSPORT and not k.startswith("param_")}
            fmt = request.query.get("default_format") or request.headers.get("X-ClickHouse-Format") or "TabSeparated"
            database = request.query.get("database") or request.headers.get("X-ClickHouse-Database") or "default"
            answer = await self._run(sql, fmt, params, settings, database)
        except EngineRefused as exc:
            return _error(exc, headers, self._version)
        out_format = _output_format(sql, fmt)
        headers["X-ClickHouse-Format"] = out_format
        headers["X-ClickHouse-Summary"] = json.dumps(answer.summary, separators=(",", ":"))
        headers["Content-Type"] = CONTENT_TYPES.get(out_format, "application/octet-stream")
        accepted = request.headers.get("Accept-Encoding", "")
        if request.query.get("enable_http_compression", "1") != "1":
            accepted = ""
        native = request.query.get("compress") == "1"  # ClickHouse's own framing, whatever Accept-Encoding says
        loop = asyncio.get_running_loop()  # compressing a large answer must not hold up the event loop
        work = partial(_compress, answer.body, native, accepted, _level(request))
        payload, encoding = await loop.run_in_executor(self.engine.executor, work)
        if encoding:
            headers["Content-Encoding"] = encoding
        return web.Response(body=payload, headers=headers)

    def _authenticate(self, request: web.Request) -> None:
        user, password = credentials(request)
        good_user = hmac.compare_digest(user.encode(), self.config.user.encode())
        good_password = hmac.compare_digest(password.encode(), self.config.password.encode())
        if not (good_user and good_password):
            raise EngineRefused(
                516,
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)",
            )


def credentials(request: web.Request) -> tuple[str, str]:
    """Basic auth, else the X-ClickHouse-User/-Key headers, else the user/password URL parameters, as ClickHouse."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            text = "Code: 516. DB::Exception: Invalid Basic authorization. (AUTHENTICATION_FAILED)"
            raise EngineRefused(516, text) from None
        return user, password
    if "X-ClickHouse-User" in request.headers:
        return request.headers["X-ClickHouse-User"], request.headers.get("X-ClickHouse-Key", "")
    return request.query.get("user", "default"), request.query.get("password", "")


def _query_text(request: web.Request, body: bytes) -> str | None:
    """The ``query`` parameter, followed by the body as ClickHouse does; None for a bare ``GET /`` (a health check)."""
    query = request.query.get("query")
    text = body.decode("utf-8", "replace")
    if query is None and not text.strip():
        if request.method in ("GET", "HEAD"):
            return None
        raise EngineRefused(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
    if request.query.get("decompress") == "1":
        raise EngineRefused(48, "Code: 48. DB::Exception: decompress=1 (ClickHouse's native compression of the request body) is not supported here; use Content-Encoding. (NOT_IMPLEMENTED)")  # noqa: E501
    return f"{query}\n{text}" if query and text else (query or text)


async def _form(request: web.Request) -> dict[str, str] | None:
    """A ``multipart/form-data`` body's fields (``query`` and ``param_*``), as ClickHouse reads them; None for any
    other body. clickhouse-connect sends its query and parameters so once they are too long for a URL."""
    if not request.content_type.startswith("multipart/"):
        return None
    fields: dict[str, str] = {}
    for name, value in (await request.post()).items():
        if not isinstance(value, str) or not (name == "query" or name.startswith("param_")):
            raise EngineRefused(
                48,
                f"Code: 48. DB::Exception: form field {name!r}: external data tables are not supported here; send "
                "the query and param_* fields only. (NOT_IMPLEMENTED)",
            )
        fields[name] = value
    return fields


def _request_body(headers: Mapping[str, str], raw: bytes) -> bytes:
    encoding = headers.get("Content-Encoding", "").lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
        if encoding == "lz4":
            return bytes(lz4.frame.decompress(raw))
    except (OSError, ValueError, zlib.error, RuntimeError) as exc:
        raise EngineRefused(432, f"Code: 432. DB::Exception: Cannot decompress the request body ({encoding}): {exc}. (UNKNOWN_CODEC)") from None  # noqa: E501
    if encoding not in ("", "identity"):
        raise EngineRefused(432, f"Code: 432. DB::Exception: Unknown Content-Encoding {encoding!r}. (UNKNOWN_CODEC)")
    return raw


def _output_format(sql: str, default: str) -> str:
    match = TRAILING_FORMAT.search(sql)
    return match.group(1) if match else default


def _compress(body: bytes, native: bool, accept_encoding: str, level: int) -> tuple[bytes, str | None]:
    """``compress=1``: ClickHouse's LZ4 blocks; else as the client accepts (the analyst profile enables HTTP
    compression; ``enable_http_compression=0`` switches it off for a request)."""
    if native:
        return native_lz4(body), None
    for encoding in (e.split(";")[0].strip().lower() for e in accept_encoding.split(",")):
        if encoding == "gzip":
            return gzip.compress(body, compresslevel=level), "gzip"
        if encoding == "deflate":
            return zlib.compress(body, level), "deflate"
        if encoding == "lz4":
            return lz4.frame.compress(body), "lz4"
    return body, None


def native_lz4(body: bytes, block: int = 1024 * 1024) -> bytes:
    """ClickHouse's compressed blocks: CityHash128 v1.0.2 checksum, method 0x82 (LZ4), compressed and raw sizes."""
    out = bytearray()
    for start in range(0, len(body), block):
        raw = body[start : start + block]
        packed = lz4.block.compress(raw, store_size=False)
        framed = b"\x82" + struct.pack("<II", len(packed) + 9, len(raw)) + packed
        checksum = CityHash128(framed)
        out += struct.pack("<QQ", checksum >> 64, checksum & (2**64 - 1)) + framed
    return bytes(out)


def _level(request: web.Request) -> int:
    try:
        return min(9, max(1, int(request.query.get("http_zlib_compression_level", "3"))))
    except ValueError:
        return 3


def _error(exc: EngineRefused, headers: dict[str, str], version: str) -> web.Response:
    headers = {**headers, "X-ClickHouse-Exception-Code": str(exc.code)}
    text = exc.text if "(version " in exc.text else f"{exc.text} (version {version} (chDB))"
    return web.Response(
        status=STATUS.get(exc.code, 500), text=text + "\n", headers=headers, content_type="text/plain", charset="utf-8"
    )


async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="Ok.\n")
