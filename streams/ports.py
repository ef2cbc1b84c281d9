"""Ports the core needs; adapters named after their technology implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from projections.tables import Rows
from schemas.event import Event


class ProjectionSink(Protocol):
    """Where projected rows go (ClickHouse)."""

    def high_water(self, table: str, topic: str) -> dict[int, int]: ...

    def existing(self, batch: Sequence[Rows]) -> dict[str, set[Any]]: ...

    def write(self, rows: Rows, token: str) -> None: ...


class EventPublisher(Protocol):
    """Publishes events durably: each send is acknowledged by the broker before it returns."""

    async def publish(self, topic: str, events: Sequence[Event]) -> None: ...
