"""Agents work a batch at a time: outputs are acknowledged together, then the batch's state is logged.

Per event, awaiting the broker's acknowledgement of each output before the state change that
records it cost a round trip per output. A batch keeps the same guarantee at one round trip:

1. every decision reads and writes the tables' in-memory state at once (``StagedTable``), so the
   next event in the batch sees it; the changelog records are held back;
2. the batch's outputs are sent together and awaited together (``Outbox``);
3. only then are the changelog records sent (``Staging.release``), and the batch's offsets are
   acknowledged, which Faust commits after flushing the producer.

Sending the changelog records ourselves also skips Faust's table buffer, which sends one record
at a time and pauses the streams whenever it holds more than a hundred.

A crash before (3) loses the in-memory state and leaves the offsets uncommitted: the batch is
processed again and may repeat an output (with the same event id), never lose one. A failure
inside a batch stops the worker (exit 70), because Faust would acknowledge the batch anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from faust.types import EventT, StreamT, TopicT

from schemas.codec import Codec
from schemas.event import Event

log = logging.getLogger(__name__)
_DELETED = object()
EXIT_AGENT_FAILED = 70


class Staging:
    """The held-back changelog records of one agent's tables."""

    def __init__(self) -> None:
        self.partition = 0  # the partition of the record being processed: its state is logged there
        # The latest value per (table, key): the changelog is compacted, so a key written several times
        # in one batch needs one record.
        self._changes: dict[tuple[int, str], tuple[Any, int, Any]] = {}

    def table(self, table: Any) -> StagedTable:
        return StagedTable(table, self)

    def stage(self, table: Any, key: str, value: Any) -> None:
        self._changes.pop((id(table), key), None)  # re-inserted last: records keep the order of the writes
        self._changes[(id(table), key)] = (table, self.partition, value)

    async def release(self) -> None:
        """Send the held-back changelog records. Straight to the producer (batched there), not through
        Faust's one-at-a-time table buffer; Faust flushes the producer before it commits offsets."""
        changes, self._changes = self._changes, {}
        for (_, key), (table, partition, value) in changes.items():
            deleted = value is _DELETED
            await table.changelog_topic.send(
                key=key,
                value=None if deleted else value,
                partition=partition,
                key_serializer=table.key_serializer,
                value_serializer="raw" if deleted else table.value_serializer,
                callback=table._on_changelog_sent,
                force=True,
            )


class StagedTable(MutableMapping[str, Any]):
    """A Faust table's in-memory store, with its changelog records staged instead of sent."""

    def __init__(self, table: Any, staging: Staging) -> None:
        self.table, self.staging = table, staging

    def __getitem__(self, key: str) -> Any:
        return self.table.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.table.data[key] = value
        self.staging.stage(self.table, key, value)

    def __delitem__(self, key: str) -> None:
        del self.table.data[key]
        self.staging.stage(self.table, key, _DELETED)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.table.data.keys()))

    def __len__(self) -> int:
        return len(self.table.data)


class Outbox:
    """A batch's outputs: sent at once, acknowledged together."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._sent: list[Any] = []

    async def send(self, topic: TopicT, event: Event, key: str | None = None, partition: int | None = None) -> None:
        # force: sent now, not attached to the current event (which, in a batch, is the last one)
        sent = await topic.send(
            key=(key if key is not None else self.codec.key_of(event)).encode(),
            value=self.codec.encode(event),
            partition=partition,
            force=True,
        )
        self._sent.append(sent)

    async def flush(self) -> None:
        sent, self._sent = self._sent, []
        if sent:
            await asyncio.gather(*sent)


async def run_batches(
    stream: StreamT[bytes],
    handle: Callable[[EventT[bytes]], Awaitable[None]],
    staging: Staging,
    outbox: Outbox,
    size: int,
    within_s: float,
) -> None:
    """Handle every event of the stream, a batch at a time; after each batch, acknowledge its outputs and
    log its state (see the module doc). Each event's state is logged to the event's partition."""
    async for events in stream.take_events(size, within_s):  # type: ignore[attr-defined] # not in StreamT
        try:
            for event in events:
                staging.partition = event.message.partition
                await handle(event)
            await outbox.flush()
            await staging.release()
        except Exception:  # any failure: stop before Faust acknowledges the batch
            log.critical("agent failed inside a batch; stopping without committing", exc_info=True)
            os._exit(EXIT_AGENT_FAILED)


class Batcher:
    """One agent's staging and outbox, and how big its batches are."""

    def __init__(self, codec: Codec, size: int, within_ms: int) -> None:
        self.staging, self.outbox = Staging(), Outbox(codec)
        self.size, self.within_s = size, within_ms / 1000

    def table(self, table: Any) -> StagedTable:
        return self.staging.table(table)

    async def run(self, stream: StreamT[bytes], handle: Callable[[EventT[bytes]], Awaitable[None]]) -> None:
        await run_batches(stream, handle, self.staging, self.outbox, self.size, self.within_s)
