"""Small wrappers around faust-streaming 0.15.3 that stop it from silently skipping input records.

After a worker restarts with tables to recover, Faust can lose records it has already fetched.
Those records are never processed and their offsets are never committed. So the group either
stalls (a gap blocks every later commit) or, when the committed offset is 0, never commits at all:
1. While recovery pauses partitions, it empties Faust's live set of active partitions in place.
   aiokafka reads an empty set as "all partitions" and hands back every buffered record. Faust then
   discards those records as inactive, but the fetch positions have already moved past them.
2. aiokafka's ``seek_to_committed`` seeks only when the committed offset is above 0, so a group
   rewound to 0 for a replay is never rewound.
3. Faust "pauses" partitions only in its own bookkeeping, so aiokafka keeps prefetching stream
   partitions during recovery: that prefetch is what the two losses above feed on. Pausing in
   aiokafka as well stops it.
4. Faust resumes stream partitions before it seeks and clears its queues afterwards, so records
   fetched in between are dropped (faust-streaming issue #596, open upstream). The resume is
   deferred until the seek and the clearing are done.
The wrappers call the original methods. They do not change them. Each is idempotent, and they fail
loudly on any other version, so whoever upgrades has to re-check them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import version
from typing import Any

import aiokafka
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustKafkaConsumer

from streams.errors import AlarmflowError

log = logging.getLogger(__name__)
CHECKED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
_MARK = "_alarmflow_fixed"


class UncheckedFaustVersion(AlarmflowError):
    """The installed Faust or aiokafka differs from the version these wrappers were checked against."""


def _check_versions() -> None:
    found = {"faust-streaming": version("faust-streaming"), "aiokafka": aiokafka.__version__}
    if found != CHECKED:
        raise UncheckedFaustVersion(f"streams/faust_fixes.py was checked against {CHECKED}, found {found}")


async def _seek_to_committed(consumer: aiokafka.AIOKafkaConsumer) -> Mapping[Any, int | None]:
    """Seek every assigned partition to its committed offset, 0 included; None where nothing is committed."""
    committed: dict[Any, int | None] = {}
    for tp in consumer.assignment():
        offset = await consumer.committed(tp)
        committed[tp] = offset
        if offset is not None and offset >= 0:
            consumer.seek(tp, offset)
    return committed


def _fetch_snapshot(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def fetch(
        self: Any, consumer: Any, active_partitions: Any, timeout: Any = None, max_records: Any = None
    ) -> Any:
        partitions = set(active_partitions or ())  # a copy: recovery may empty the original meanwhile
        if not partitions:
            return {}
        return await original(self, consumer, partitions, timeout=timeout, max_records=max_records)

    return fetch


async def _driver_seek_to_committed(self: Any) -> Mapping[Any, int | None]:
    result: Mapping[Any, int | None] = await self.call_thread(_seek_to_committed, self._ensure_consumer())
    return result


def _also_in_aiokafka(original: Callable[..., None], action: str) -> Callable[..., None]:
    def change(self: Any, tps: Any) -> None:
        tps = list(tps)
        original(self, tps)
        try:
            consumer = self._thread._ensure_consumer()
        except Exception:  # noqa: BLE001 - not started yet: nothing is being fetched
            return
        assigned = consumer.assignment()
        wanted = [aiokafka.TopicPartition(tp.topic, tp.partition) for tp in tps]
        getattr(consumer, action)(*(tp for tp in wanted if tp in assigned))

    return change


def _resume_after_recovery(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run Faust's recovery completion with stream partitions kept paused, then resume them.

    Faust resumes the stream partitions, seeks, then clears its queues (#596): whatever was fetched
    in between is lost. With the resume deferred until all of that is done, nothing is fetched
    before the queues are clear, and fetching starts at the committed offsets.
    """

    async def completed(self: Any, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        deferred: list[Any] = []
        real_resume = consumer.resume_partitions
        consumer.resume_partitions = deferred.extend
        try:
            await original(self, generation_id)
        finally:
            consumer.resume_partitions = real_resume
        if deferred and self.app.consumer_generation_id == generation_id:
            assigned = consumer.assignment()
            real_resume([tp for tp in deferred if tp in assigned])

    return completed


def apply() -> None:
    """Install the wrappers once per process."""
    if getattr(AIOKafkaConsumerThread, _MARK, False):
        return
    _check_versions()
    thread: Any = AIOKafkaConsumerThread
    thread._fetch_records = _fetch_snapshot(thread._fetch_records)
    thread.seek_to_committed = _driver_seek_to_committed
    consumer: Any = FaustKafkaConsumer
    consumer.pause_partitions = _also_in_aiokafka(consumer.pause_partitions, "pause")
    consumer.resume_partitions = _also_in_aiokafka(consumer.resume_partitions, "resume")
    recovery: Any = Recovery
    recovery.on_recovery_completed = _resume_after_recovery(recovery.on_recovery_completed)
    recovery._resume_streams = _resume_after_recovery(recovery._resume_streams)  # the path with nothing to recover
    setattr(AIOKafkaConsumerThread, _MARK, True)
