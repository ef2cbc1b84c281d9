"""Faust 0.15.3 with six fixes, through its own extension points: a transport and a table manager.

After a worker restarts or rebalances with tables to recover, Faust can lose records it has already
fetched: they are never processed, their offsets never committed, and the group stalls (a gap blocks
every later commit) or, rewound to 0 for a replay, never commits at all. Each fix below is a subclass,
registered the documented way (``Transport`` through the ``faust.transports`` entry point and
``broker="alarmflow://…"``; ``TableManager`` through the app setting); nothing of Faust's is patched.

1. ``ConsumerThread._fetch_records`` reads a copy of the active partitions. Recovery empties the live
   set in place while a fetch is under way; aiokafka reads an empty set as "all partitions" and hands
   back every buffered record, which Faust then drops as inactive after the fetch positions moved past
   them. (Still open upstream in 0.15.3: ``_set_active_tps`` / ``pause_partitions`` mutate the set.)
2. ``ConsumerThread.seek_to_committed`` seeks to a committed offset of 0 too; aiokafka's skips it
   (``if offset and offset > 0``), so a group rewound to 0 for a replay was never rewound.
3. ``Consumer.pause_partitions`` / ``resume_partitions`` pause in aiokafka as well, on the consumer
   thread's own loop. Faust pauses only in its bookkeeping, so aiokafka keeps prefetching stream
   partitions during recovery, which is what losses 1 and 4 feed on.
4. ``Recovery`` resumes the stream partitions only after it has sought to the committed offsets and
   cleared its queues (faust-streaming #596, open): resumed first, records fetched in between are
   dropped by the clearing.

5. ``ConsumerThread.verify_event_path`` skips partitions paused on purpose (the changelogs after recovery),
   which Faust's livelock check otherwise reports as stalled every 2.5 s, thousands of ERROR lines a run.
6. ``ConsumerThread._create_worker_consumer`` sets the consumer's fetch wait from the broker URL. Faust fixes it
   at 1,500 ms. aiokafka keeps one fetch in flight per broker, for the partitions with nothing buffered; while it
   waits on quiet ones, a busy partition whose buffer was drained meanwhile waits too. Measured live at 318
   events/s: records reached the agents 1.3-2.0 s after they were produced, and 0.26-0.36 s with 100 ms.

And one bound: ``Consumer.wait_empty``, which a shutdown and every rebalance call to let the batches in
flight finish, has no timeout in Faust (the known ``wait_empty`` hang). Here it gets ``WAIT_EMPTY_LIMIT_S``;
past it the worker exits (75) without committing what is unfinished: that is read again after the restart,
and the engines' outputs repeat with the same ids, as after a kill -9. Nothing is acknowledged early.

And one addition: ``Producer.send_records`` sends a batch's records through aiokafka's batch API
(``create_batch`` / ``send_batch``, one broker acknowledgement per partition batch instead of a future, a
sensor call and a metadata wait per record), partitioned exactly as ``send`` would (aiokafka's default
partitioner on the key).

They refuse to run on any other Faust or aiokafka version, so whoever upgrades has to check them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import version
from typing import Any, NamedTuple

import aiokafka
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata
from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import Producer as FaustProducer
from faust.transport.drivers.aiokafka import Transport as FaustTransport
from faust.types import TP

from streams.errors import AlarmflowError

log = logging.getLogger(__name__)
CHECKED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
SCHEME = "alarmflow"  # broker="alarmflow://host:port": Kafka through the Transport below
FETCH_MAX_WAIT = "fetch_max_wait_ms"  # broker="alarmflow://host:port?fetch_max_wait_ms=N": see fix 6


class UncheckedFaustVersion(AlarmflowError):
    """The installed Faust or aiokafka differs from the version these fixes were checked against."""


def check_versions() -> None:
    found = {"faust-streaming": version("faust-streaming"), "aiokafka": aiokafka.__version__}
    if found != CHECKED:
        raise UncheckedFaustVersion(f"streams/faust_ext.py was checked against {CHECKED}, found {found}")


class ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        """Fix 6: the broker URL's ``fetch_max_wait_ms`` in place of Faust's fixed 1,500 ms (it has no setting)."""
        consumer = super()._create_worker_consumer(transport)
        wait = transport.url[0].query.get(FETCH_MAX_WAIT)
        if wait is not None:
            consumer._fetch_max_wait_ms = int(wait)  # read once, by start(), to build its fetcher
        return consumer

    async def _fetch_records(
        self, consumer: Any, active_partitions: Any, timeout: float | None = None, max_records: int | None = None
    ) -> Any:
        partitions = set(active_partitions or ())  # fix 1: a copy, recovery may empty the original meanwhile
        if not partitions:
            return {}
        return await super()._fetch_records(consumer, partitions, timeout=timeout, max_records=max_records)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(_seek_to_committed, self._ensure_consumer())
        return result

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Quiet 5: a partition paused on purpose is not stalled. After recovery every changelog partition stays
        assigned and paused (fix 3), and Faust's livelock check, every 2.5 s, logged an error for each of them
        ("has not sent fetch request ... since start"): thousands of false alarms per run."""
        if aiokafka.TopicPartition(tp.topic, tp.partition) in self._ensure_consumer().paused():
            return None
        return super().verify_event_path(now, tp)


async def _seek_to_committed(consumer: aiokafka.AIOKafkaConsumer) -> Mapping[Any, Any]:
    """Fix 2: seek every assigned partition to its committed offset, 0 included; None where nothing is committed
    (what Faust's ``perform_seek`` reads)."""
    committed: dict[Any, int | None] = {}
    for tp in consumer.assignment():
        offset = await consumer.committed(tp)
        committed[tp] = offset
        if offset is not None and offset >= 0:
            consumer.seek(tp, offset)
    return committed


WAIT_EMPTY_LIMIT_S = 8.0  # a batch takes well under a second; a shutdown must finish within 10 s
EXIT_STUCK = 75  # EX_TEMPFAIL: restart me


class Consumer(FaustConsumer):
    """Pauses and resumes in aiokafka too (fix 3), can hold resumes back while recovery finishes (fix 4), and
    waits for the batches in flight at most ``WAIT_EMPTY_LIMIT_S``."""

    _deferred: list[TP] | None = None

    async def wait_empty(self) -> None:
        # asyncio.wait, not wait_for: wait_for cancels the waiter and then waits for it to end, and Faust's
        # wait_empty can outlive a cancellation (it did once in the fault suite, for minutes).
        waiter = asyncio.ensure_future(super().wait_empty())
        done, _ = await asyncio.wait({waiter}, timeout=WAIT_EMPTY_LIMIT_S)
        if waiter in done:
            waiter.result()
        else:
            log.critical(
                "a batch in flight did not finish within %.0f s of a shutdown or rebalance: exiting without "
                "committing it; it is read again after the restart",
                WAIT_EMPTY_LIMIT_S,
            )
            logging.shutdown()
            os._exit(EXIT_STUCK)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        tps = list(tps)
        super().pause_partitions(tps)
        self._in_aiokafka("pause", tps)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = list(tps)
        if self._deferred is not None:
            self._deferred.extend(tps)
            return
        super().resume_partitions(tps)
        self._in_aiokafka("resume", tps)

    def defer_resumes(self) -> None:
        self._deferred = []

    def release_resumes(self, still_assigned: bool) -> None:
        deferred, self._deferred = self._deferred or [], None
        if deferred and still_assigned:
            assigned = self.assignment()
            self.resume_partitions([tp for tp in deferred if tp in assigned])

    def _in_aiokafka(self, action: str, tps: list[TP]) -> None:
        thread = getattr(self, "_thread", None)
        loop = getattr(thread, "thread_loop", None)
        if thread is None or loop is None or loop.is_closed():
            return  # not started yet: nothing is being fetched
        wanted = [aiokafka.TopicPartition(tp.topic, tp.partition) for tp in tps]

        def apply() -> None:
            # On the consumer thread's loop: aiokafka's pause creates its wake-up future on the running loop,
            # which must be the one the fetcher waits on.
            try:
                consumer = thread._ensure_consumer()
            except Exception:  # noqa: BLE001 - stopped meanwhile: nothing to pause or resume
                return
            assigned = consumer.assignment()
            getattr(consumer, action)(*(tp for tp in wanted if tp in assigned))

        loop.call_soon_threadsafe(apply)


class Outgoing(NamedTuple):
    """One record to send: ``partition`` None means by the key, as ``send`` chooses."""

    topic: str
    key: bytes
    value: bytes | None
    partition: int | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class Producer(FaustProducer):
    _choose = DefaultPartitioner()

    async def send_records(self, records: Sequence[Outgoing]) -> list[tuple[Outgoing, TP, int]]:
        """Send every record and wait for the broker's acknowledgements; (record, partition, offset) in order.

        Records of one partition keep their order (one batch after another on the partition's queue)."""
        producer = self._ensure_producer()
        groups: dict[TP, list[int]] = {}
        partitions: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            partition = r.partition
            if partition is None:
                every = partitions.get(r.topic)
                if every is None:
                    every = partitions[r.topic] = sorted(await producer.partitions_for(r.topic))
                partition = self._choose(r.key, every, every)
            groups.setdefault(TP(r.topic, partition), []).append(i)
        sent: list[tuple[list[int], asyncio.Future[RecordMetadata]]] = []
        for tp, members in groups.items():
            batch, inside = producer.create_batch(), list[int]()
            for i in members:
                r = records[i]
                if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
                    sent.append((inside, await producer.send_batch(batch, tp.topic, partition=tp.partition)))
                    batch, inside = producer.create_batch(), list[int]()
                    if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
                        raise ValueError(f"a record for {tp} is larger than a whole batch")
                inside.append(i)
            sent.append((inside, await producer.send_batch(batch, tp.topic, partition=tp.partition)))
        out: list[tuple[Outgoing, TP, int] | None] = [None] * len(records)
        acks = await asyncio.gather(*(future for _, future in sent))
        for (inside, _), meta in zip(sent, acks, strict=True):
            for n, i in enumerate(inside):  # a batch's records take consecutive offsets from its base offset
                out[i] = (records[i], TP(meta.topic, meta.partition), meta.offset + n)
        return [o for o in out if o is not None]


class Transport(FaustTransport):
    Consumer = Consumer
    Producer = Producer


def producer_of(app: Any) -> Producer:
    """The app's producer, with ``send_records``."""
    producer = app.producer
    assert isinstance(producer, Producer), "the app must use streams.faust_ext.Transport"
    return producer


class Recovery(FaustRecovery):
    """Fix 4: stream partitions resume once the seek and the queue clearing are done, not before."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        await self._with_resumes_deferred(super().on_recovery_completed, generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:  # the path with nothing to recover
        await self._with_resumes_deferred(super()._resume_streams, generation_id)

    async def _with_resumes_deferred(self, completion: Any, generation_id: int) -> None:
        consumer = self.app.consumer
        assert isinstance(consumer, Consumer), "the app must use streams.faust_ext.Transport"
        consumer.defer_resumes()
        try:
            await completion(generation_id)
        finally:
            consumer.release_resumes(self.app.consumer_generation_id == generation_id)


class TableManager(FaustTableManager):
    @property
    def recovery(self) -> FaustRecovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
