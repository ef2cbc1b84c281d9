"""The agents' batch staging: reads see writes at once, the changelog gets one record per key and batch,
in write order, only when released."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.agents.staging import Staging


class ChangelogTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, Any, int | None, Any]] = []

    async def send(self, *, key: Any, value: Any, partition: int | None, value_serializer: Any, **_: Any) -> None:
        self.sent.append((key, value, partition, value_serializer))


class FakeTable:
    """What Staging touches of a Faust table: the in-memory store and the changelog topic."""

    key_serializer, value_serializer = "json", "json"

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog_topic = ChangelogTopic()

    def _on_changelog_sent(self, fut: Any) -> None: ...


def test_writes_are_visible_at_once_and_logged_once_per_key_on_release() -> None:
    staging, faust_table = Staging(), FakeTable()
    table = staging.table(faust_table)
    staging.partition = 2
    table["a"] = 1
    table["b"] = 1
    table["a"] = 2  # the same key again in the batch
    staging.partition = 3
    del table["b"]
    assert dict(table) == {"a": 2} and "b" not in table and table.get("b") is None
    assert faust_table.changelog_topic.sent == []  # nothing logged before the outputs are acknowledged
    asyncio.run(staging.release())
    assert faust_table.changelog_topic.sent == [("a", 2, 2, "json"), ("b", None, 3, "raw")]
    asyncio.run(staging.release())
    assert len(faust_table.changelog_topic.sent) == 2  # released once
