"""``GET /board`` and ``GET /board.json`` on the worker that owns the database: the command room's live board.

Read-only: every query runs through ``run_readonly`` (ClickHouse's ``readonly=1``) in the projector's one
ClickHouse thread, like ``/query``. Any number of screens poll once a second and share one snapshot: the open
cases, breaches, escalations and dead letters are re-read at most once a second, today's compliance and the
hotspot agenda every ten, the consumer lag every five. The page has no external assets (no CDN, no fonts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import faust
from clickhouse_connect.driver.client import Client
from faust.web import Request, Response, View

from projections.errors import ProjectionError
from projections.query import QueryResult, run_readonly
from streams import board
from streams.board_page import PAGE
from streams.domain.outcomes import LOCAL_TZ
from streams.errors import AlarmflowError
from streams.kafka_admin import groups_lag
from streams.report import AGENDA
from streams.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
Run = Callable[[Callable[[], T]], Awaitable[T]]

FAST_S, SLOW_S, LAG_S = 1.0, 10.0, 5.0


class BoardData:
    """The board's snapshot, shared by every screen, each part refreshed at its own pace."""

    def __init__(
        self,
        settings: Settings,
        client: Client,
        run: Run[Any],
        leads: Mapping[str, float],
        category_names: Mapping[str, str],
    ) -> None:
        self.settings, self.client, self.run, self.leads = settings, client, run, leads
        self.category_names = dict(category_names)  # the taxonomy's Chinese names, shown in place of the codes
        self.lock = asyncio.Lock()
        self.parts: dict[str, tuple[float, Any]] = {}

    def _query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        return run_readonly(self.client, sql, parameters)

    def _fast(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        since = now - timedelta(hours=self.settings.retention_h)
        return board.fast_part(self._query, now, self.leads, since)

    def _slow(self) -> dict[str, Any]:
        today = datetime.now(LOCAL_TZ).date()
        agenda = self._query(AGENDA, {"day": today.isoformat()})
        return {
            "compliance": board.compliance(self._query, today),
            "agenda": {"columns": agenda.columns, "rows": agenda.rows[:20], "total": len(agenda.rows)},
        }

    async def _lag(self) -> dict[str, Any]:
        at = datetime.now(UTC).isoformat()
        try:
            lags = await groups_lag(self.settings.kafka_bootstrap, self.settings.consumer_groups())
        except AlarmflowError as exc:
            return asdict(board.Lag(0, 0, at, str(exc)))
        return asdict(board.Lag(sum(x.lag for x in lags), sum(x.pending for x in lags), at))

    async def _part(self, name: str, every: float, make: Callable[[], Awaitable[Any]]) -> Any:
        at, value = self.parts.get(name, (0.0, None))
        if time.monotonic() - at >= every:
            try:
                value = await make()
            except ProjectionError as exc:  # a query the engine refused: show it, keep the last good value
                log.warning("board: %s: %s", name, exc)
                value = {**(value or {}), "error": str(exc)}
            self.parts[name] = (time.monotonic(), value)
        return value

    async def snapshot(self) -> dict[str, Any]:
        async with self.lock:  # one refresh at a time; screens polling meanwhile get its result
            fast = await self._part("fast", FAST_S, lambda: self.run(self._fast))
            slow = await self._part("slow", SLOW_S, lambda: self.run(self._slow))
            lag = await self._part("lag", LAG_S, self._lag)
        return {**(fast or {}), **(slow or {}), "lag": lag, "category_names": self.category_names}


def register(app: faust.App, data: BoardData) -> None:
    @app.page("/board")
    class BoardPage(View):
        """The live board: one self-contained page."""

        async def get(self, request: Request) -> Response:
            return self.html(PAGE)

    @app.page("/board.json")
    class BoardJson(View):
        """The board's data, polled by the page every second."""

        async def get(self, request: Request) -> Response:
            return self.json(await data.snapshot())
