"""The Faust wrappers: an emptied partition set fetches nothing, and offset 0 is a real committed offset."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams import faust_fixes


async def test_an_empty_active_set_fetches_nothing_and_the_set_is_copied() -> None:
    seen: list[Any] = []

    async def original(self: Any, consumer: Any, partitions: Any, timeout: Any = None, max_records: Any = None) -> Any:
        seen.append(partitions)
        return {"tp": ["record"]}

    fetch = faust_fixes._fetch_snapshot(original)
    assert await fetch(None, None, set()) == {}
    assert seen == []
    live = {"tp"}
    assert await fetch(None, None, live) == {"tp": ["record"]}
    assert seen == [{"tp"}] and seen[0] is not live


class FakeConsumer:
    def __init__(self, committed: dict[str, int | None]) -> None:
        self._committed, self.seeks = committed, {}  # type: dict[str, int | None], dict[str, int]

    def assignment(self) -> set[str]:
        return set(self._committed)

    async def committed(self, tp: str) -> int | None:
        return self._committed[tp]

    def seek(self, tp: str, offset: int) -> None:
        self.seeks[tp] = offset


async def test_a_group_rewound_to_zero_is_seeked_to_zero() -> None:
    consumer = FakeConsumer({"a": 0, "b": 7, "c": None})
    result = await faust_fixes._seek_to_committed(consumer)  # type: ignore[arg-type]
    assert consumer.seeks == {"a": 0, "b": 7}
    assert result == {"a": 0, "b": 7, "c": None}


def test_apply_is_idempotent_and_installs_the_wrappers() -> None:
    faust_fixes.apply()
    first = AIOKafkaConsumerThread._fetch_records
    faust_fixes.apply()
    assert AIOKafkaConsumerThread._fetch_records is first
    assert AIOKafkaConsumerThread.seek_to_committed is faust_fixes._driver_seek_to_committed  # type: ignore[comparison-overlap]
