"""The projection agent: batches from every event topic into ClickHouse, acknowledged only after the write."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.types import StreamT

from schemas.codec import Codec
from schemas.event import Event
from streams.agents.common import as_message, raw_topic
from streams.projector import Projector
from streams.settings import PROJECTED_TOPICS, Settings

log = logging.getLogger(__name__)
EXIT_SINK_FAILED = 70


class FaustPublisher:
    """EventPublisher on the Faust producer: encodes, sends, and waits for every broker ack."""

    def __init__(self, app: faust.App, codec: Codec) -> None:
        self.app, self.codec = app, codec

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        producer = self.app.producer
        pending = [
            await producer.send(
                topic,
                self.codec.key_of(e).encode(),
                self.codec.encode(e),
                partition=None,
                timestamp=None,
                headers=[("error_class", str(e.fields.get("error_class", "")).encode())],
            )
            for e in events
        ]
        for future in pending:
            await future
        await producer.flush()


def register(app: faust.App, settings: Settings, projector: Projector) -> None:
    inputs = raw_topic(app, *(settings.topic(s) for s in PROJECTED_TOPICS))

    @app.agent(inputs, concurrency=1, name="project")
    async def project(events: StreamT[bytes]) -> None:
        stream = cast(Stream[bytes], events)  # take_events lives on Stream, not on StreamT
        async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_ms / 1000):
            # Hold each message: take_events acks in a finally, even when we fail. Our own
            # ack after the write is what lets the refcount reach zero and the offset commit.
            for event in batch:
                event.message.incref()
            try:
                report = await projector.handle([as_message(e) for e in batch])
            except Exception:
                # Anything but a transient ClickHouse error (retried inside) ends here: a dead-letter
                # publish that failed, a permanent ClickHouse error, a bug. Committing past this batch
                # would lose it, and restarting only this agent would leave its messages held, so the
                # whole worker exits; a supervisor restarts it from the last committed offsets.
                log.critical("projection failed, stopping without committing", exc_info=True)
                os._exit(EXIT_SINK_FAILED)
            for event in batch:
                await stream.ack(event)
            log.debug("batch: %s", report)

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Another worker may have written these partitions meanwhile: re-read the marks.
        projector.forget_marks()

    app.on_partitions_revoked.connect(_rebalanced)
    app.on_partitions_assigned.connect(_rebalanced)
