"""The Faust fixes as subclasses: an emptied partition set fetches nothing, offset 0 is a real committed offset,
resumes wait while recovery finishes, and the app is wired to them the documented way."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import faust
from faust.transport import by_url
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from streams import faust_ext
from streams.app import faust_app
from streams.settings import Settings


async def test_an_empty_active_set_fetches_nothing_and_the_set_is_copied(monkeypatch: Any) -> None:
    seen: list[Any] = []

    async def parent(self: Any, consumer: Any, partitions: Any, timeout: Any = None, max_records: Any = None) -> Any:
        seen.append(partitions)
        return {"tp": ["record"]}

    monkeypatch.setattr(AIOKafkaConsumerThread, "_fetch_records", parent)  # the parent class, stubbed in this test
    thread = object.__new__(faust_ext.ConsumerThread)
    assert await thread._fetch_records(None, set()) == {}
    assert seen == []
    live = {"tp"}
    assert await thread._fetch_records(None, live) == {"tp": ["record"]}
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
    result = await faust_ext._seek_to_committed(consumer)  # type: ignore[arg-type]
    assert consumer.seeks == {"a": 0, "b": 7}
    assert result == {"a": 0, "b": 7, "c": None}


def test_resumes_wait_until_recovery_has_sought_and_cleared() -> None:
    resumed: list[Any] = []
    a, b, c = (TP("t", n) for n in range(3))
    consumer = object.__new__(faust_ext.Consumer)
    consumer._deferred = None
    consumer.assignment = lambda: {a, b}  # type: ignore[method-assign]
    consumer._get_active_partitions = set  # type: ignore[method-assign]
    consumer._paused_partitions = set()
    consumer._in_aiokafka = lambda action, tps: resumed.append((action, sorted(tps)))  # type: ignore[method-assign]
    consumer.defer_resumes()
    consumer.resume_partitions([a, b, c])
    assert resumed == []  # held back while recovery seeks and clears its queues
    consumer.release_resumes(still_assigned=True)
    assert resumed == [("resume", [a, b])]  # only what is still assigned
    consumer.defer_resumes()
    consumer.resume_partitions([a])
    consumer.release_resumes(still_assigned=False)  # a new rebalance began: the next recovery resumes
    assert resumed == [("resume", [a, b])]


def test_the_app_uses_the_fixed_transport_and_table_manager() -> None:
    faust_ext.check_versions()
    assert by_url(f"{faust_ext.SCHEME}://127.0.0.1:9092") is faust_ext.Transport
    app = faust.App("t-ext", broker=f"{faust_ext.SCHEME}://127.0.0.1:1", TableManager=faust_ext.TableManager)
    assert isinstance(app.tables, faust_ext.TableManager)
    assert isinstance(app.tables.recovery, faust_ext.Recovery)
    assert isinstance(app.transport, faust_ext.Transport) and app.transport.Consumer is faust_ext.Consumer


async def test_wait_empty_ends_the_worker_even_when_faust_outlives_a_cancellation(monkeypatch: Any) -> None:
    """Faust's own wait_empty swallows CancelledError while it waits for an ack, so a wait_for around it never
    returns (a worker hung for minutes in the fault suite): the bound must hold without cancelling it."""
    import asyncio

    from faust.transport.consumer import Consumer as FaustConsumer

    over = asyncio.Event()

    async def stubborn(self: Any) -> None:  # as Faust's: waits for acks that never come, and ignores cancels
        while not over.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)

    class Exited(Exception):  # not SystemExit: asyncio hands that to the loop, past the test
        pass

    def exit_now(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(FaustConsumer, "wait_empty", stubborn)  # the parent class, stubbed in this test
    monkeypatch.setattr(faust_ext, "WAIT_EMPTY_LIMIT_S", 0.3)
    monkeypatch.setattr(faust_ext.os, "_exit", exit_now)
    monkeypatch.setattr(faust_ext.logging, "shutdown", lambda: None)
    consumer = object.__new__(faust_ext.Consumer)
    try:
        await asyncio.wait_for(consumer.wait_empty(), timeout=5)
    except Exited as exc:
        assert exc.args == (faust_ext.EXIT_STUCK,)
    else:
        raise AssertionError("wait_empty returned although nothing was acknowledged")
    finally:
        over.set()  # the stub's loop ends, so the test's event loop can close


async def test_the_agents_fetch_wait_comes_from_the_settings(tmp_path: Path) -> None:
    """Fix 6: Faust builds its consumer with a 1,500 ms fetch wait; the worker's app gets the setting's instead, in
    the attribute aiokafka's start() builds its fetcher from."""
    settings = Settings(var_dir=tmp_path, fetch_max_wait_ms=77)
    app = faust_app(settings)
    thread = app.consumer._thread
    assert isinstance(thread, faust_ext.ConsumerThread)
    assert thread._create_worker_consumer(app.transport)._fetch_max_wait_ms == 77
    plain = faust.App("t-plain", broker=f"{faust_ext.SCHEME}://127.0.0.1:1")  # no wait in the URL: Faust's own
    assert plain.consumer._thread._create_worker_consumer(plain.transport)._fetch_max_wait_ms == 1500
