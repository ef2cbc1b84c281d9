"""How an agent runs its engine: a batch at a time, outputs acknowledged before the state that records them.

For each batch of one input topic (``Stream.take_events``):
1. every record is decoded once and fed to the engine, which changes its in-memory state and says what to
   publish (streams.domain.engine);
2. the batch's outputs and then its progress announcements are sent together and acknowledged. Records of one
   partition keep their order (``faust_ext.Producer.send_records``), and an announcement covers the records of
   the partition it goes to, so no downstream partition reads an announcement before the records it covers;
3. the state changes are logged to the agent's one changelog topic, in the engine's safe order, and
   acknowledged; only then are they written to the local store (``Table.apply_changelog_batch``, the same
   path Faust's recovery takes), which also records the changelog offset a persistent store resumes from;
4. the body returns, and Faust acknowledges the batch's offsets.

A crash before (4) repeats the batch on restart, from state no newer than the changelog: outputs may
repeat (with the same event ids), none is lost. A failure inside a batch stops the worker (exit 70)
before Faust could acknowledge the batch; so does a cancellation mid-batch.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from faust.types import TP, EventT, StreamT, TopicT

from schemas.codec import Codec
from schemas.errors import PoisonInput
from schemas.event import Event
from schemas.validation import Limits
from streams import metrics
from streams.agents.state import entries_of, store_key
from streams.domain.engine import Emit, Record
from streams.faust_ext import Outgoing, producer_of
from streams.ingest import Accepted, Message, Rejected, classify, dead_letter, utc_from_millis
from streams.settings import Settings

log = logging.getLogger(__name__)
EXIT_AGENT_FAILED = 70
APP_HEADER = "alarmflow-app"  # which deployment wrote a derived record: engines decide from their own only


class Engine(Protocol):
    def loaded(self, partition: int) -> bool: ...

    def forget(self) -> None: ...

    def on_record(self, record: Record) -> list[Emit]: ...

    def announcements(self, partition: int) -> list[Emit]: ...

    def flush(self, partition: int) -> Sequence[tuple[str, Any]]: ...


class Binding(Protocol):
    """An engine with the codec of its state."""

    @property
    def engine(self) -> Engine: ...

    def load(self, partition: int, entries: dict[str, bytes]) -> None: ...

    def encode(self, key: str, value: Any) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Logged:
    """A changelog record as written, in the shape ``Table.apply_changelog_batch`` reads (event and message)."""

    key: bytes
    value: bytes | None
    tp: TP
    offset: int

    @property
    def message(self) -> _Logged:
        return self

    @property
    def partition(self) -> int:
        return self.tp.partition


class Outbox:
    """Sends emits to their topics, stamped with this deployment's id, and waits for every acknowledgement.

    A batch's records go out together through aiokafka's batch API (``faust_ext.Producer.send_records``): no
    per-record Faust message, callback, sensor or future, one acknowledgement per partition batch."""

    def __init__(self, app: faust.App, codec: Codec, topics: Mapping[str, str], app_id: str) -> None:
        self.app, self.codec, self.topics = app, codec, topics
        self.headers = [(APP_HEADER, app_id.encode())]

    async def publish(self, emits: Sequence[Emit]) -> None:
        if not emits:
            return
        records = []
        for e in emits:
            key = e.key if e.key is not None else self.codec.key_of(e.event)
            records.append(
                Outgoing(self.topics[e.topic], key.encode(), self.codec.encode(e.event), e.partition, self.headers)
            )
        await producer_of(self.app).send_records(records)


class Runner:
    """One agent: an input topic, its engine, the engine's table, and where the outputs go."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        codec: Codec,
        binding: Binding,
        table: Any,
        outbox: Outbox,
        limits: Limits | None,
    ) -> None:
        self.app, self.settings, self.codec = app, settings, codec
        self.binding, self.engine, self.table, self.outbox = binding, binding.engine, table, outbox
        self.limits = limits  # None: an internal topic, written only by the agents, decoded without the gate
        self.own = settings.app_id.encode()

    async def run(self, stream: StreamT[bytes]) -> None:
        size, within = self.settings.agent_batch_max, self.settings.agent_batch_within_ms / 1000
        async for events in stream.take_events(size, within):  # type: ignore[attr-defined]  # not in StreamT
            try:
                await self.batch(events)
            except BaseException:  # also a cancellation mid-batch: Faust would acknowledge it on the way out
                log.critical("agent failed inside a batch; stopping without committing", exc_info=True)
                os._exit(EXIT_AGENT_FAILED)

    async def batch(self, events: Sequence[EventT[bytes]]) -> None:
        emits: list[Emit] = []
        touched: dict[int, None] = {}
        for event in events:
            partition = event.message.partition
            if not self.engine.loaded(partition):
                self.binding.load(partition, entries_of(partition, self.table.data.items()))
            touched[partition] = None
            record = self._record(event, emits)
            if record is not None:
                emits += self.engine.on_record(record)
        for partition in touched:
            emits += self.engine.announcements(partition)
        await self.outbox.publish([e for e in emits if not e.after] + [e for e in emits if e.after])
        await self._log_state(list(touched))
        metrics.agent_batch(emits)

    def _record(self, event: EventT[bytes], emits: list[Emit]) -> Record | None:
        m = event.message
        message = Message(m.topic, m.partition, m.offset, m.key, m.value or b"", utc_from_millis(m.timestamp * 1000))
        if self.limits is not None:
            outcome = classify(self.codec, self.limits, message)
            if not isinstance(outcome, Accepted):
                return None  # upstream poison is the projector's to dead-letter
            decoded = outcome.event
        else:
            try:
                decoded = self.codec.decode(message.value)
            except PoisonInput as error:  # nobody else reads this topic: dead-letter it here
                emits.append(Emit("deadletter", dead_letter(Rejected(message, error))))
                return None
        return Record(
            decoded,
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            message.timestamp,
            own=self._own(m.headers),
        )

    def _own(self, headers: Any) -> bool:
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        return any(k == APP_HEADER and v == self.own for k, v in items)

    async def _log_state(self, partitions: list[int]) -> None:
        """Log the batch's state changes, then write them to the local store (see the module doc)."""
        topic = self.table.changelog_topic.get_topic_name()
        records: list[Outgoing] = []
        for partition in partitions:
            for key, value in self.engine.flush(partition):
                v = None if value is None else self.binding.encode(key, value)
                records.append(Outgoing(topic, store_key(partition, key), v, partition))
        if not records:
            return
        sent = await producer_of(self.app).send_records(records)
        self.table.apply_changelog_batch([_Logged(r.key, r.value, tp, offset) for r, tp, offset in sent])


def ticker(app: faust.App, settings: Settings, codec: Codec, topics: Sequence[TopicT]) -> None:
    """Every ``tick_interval``, append a ClockTicked to each of these topics' partitions this worker owns.

    Time as an event: the tick travels through the partition like any record, so the decisions it lets
    through run on the owner, in log order, and a replay reads the same ticks. The timer runs on every
    worker but acts on its own assignment only, and not while a rebalance is moving it."""
    by_name = {t.get_topic_name(): t for t in topics}
    headers = [(APP_HEADER, settings.app_id.encode())]

    async def tick() -> None:
        if app.rebalancing:
            return
        for tp in app.assignor.assigned_actives():
            topic = by_name.get(tp.topic)
            if topic is None:
                continue
            tick_id = f"tick/{tp.partition}"
            event = Event(
                "ClockTicked",
                {
                    "event_id": str(uuid.uuid4()),
                    "occurred_at": datetime.now(UTC),
                    "source": "alarmflow.worker",
                    "tick_id": tick_id,
                    "partition": tp.partition,
                },
            )
            await topic.send(key=tick_id.encode(), value=codec.encode(event), partition=tp.partition, headers=headers)
            metrics.tick_sent(tp.topic)

    app.timer(settings.tick_interval_ms / 1000)(tick)
