"""The projector: every event topic into ClickHouse, offsets committed only after the write.

It runs inside the worker process (chDB allows one process per database) but with its own
aiokafka consumer and consumer group, ``<app_id>-projector``. Faust's table recovery and
stream acknowledgements are not involved: each batch is read with ``getmany``, projected,
and then its offsets are committed explicitly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from schemas.codec import Codec
from schemas.event import Event
from streams import metrics
from streams.faust_ext import Outgoing, producer_of
from streams.ingest import Message, utc_from_millis
from streams.projector import Projector
from streams.settings import PROJECTED_TOPICS, Settings

log = logging.getLogger(__name__)
EXIT_SINK_FAILED = 70


class FaustPublisher:
    """EventPublisher on the Faust producer: encodes, sends, and waits for every broker ack."""

    def __init__(self, app: faust.App, codec: Codec) -> None:
        self.app, self.codec = app, codec

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        records = [
            Outgoing(
                topic,
                self.codec.key_of(e).encode(),
                self.codec.encode(e),
                headers=[("error_class", str(e.fields.get("error_class", "")).encode())],
            )
            for e in events
        ]
        await producer_of(self.app).send_records(records)


class _ForgetMarks(ConsumerRebalanceListener):  # type: ignore[misc]
    """Another projector may have written a partition meanwhile: re-read its high-water marks."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    async def on_partitions_revoked(self, revoked: object) -> None:
        self.projector.forget_marks()

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.projector.forget_marks()


async def run(settings: Settings, projector: Projector) -> None:
    """Read batches, project them, commit them, until cancelled; any failure stops the process."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.app_id}-projector",  # see Settings.consumer_groups
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_max,
        fetch_max_wait_ms=settings.batch_within_ms,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
    )
    consumer.subscribe([settings.topic(t) for t in PROJECTED_TOPICS], listener=_ForgetMarks(projector))
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=settings.batch_within_ms, max_records=settings.batch_max)
            if batch:
                await _project_batch(consumer, projector, batch)
    finally:
        await consumer.stop()


async def _project_batch(
    consumer: AIOKafkaConsumer, projector: Projector, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
) -> None:
    messages = [
        Message(r.topic, r.partition, r.offset, r.key, r.value or b"", utc_from_millis(r.timestamp))
        for records in batch.values()
        for r in records
    ]
    try:
        report = await projector.handle(messages)
        await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        metrics.projector_batch(batch)
    except Exception:
        # Anything but a transient ClickHouse error (retried inside) ends here: a dead-letter
        # publish that failed, a permanent ClickHouse error, a bug. The offsets stay where they
        # were, and a supervisor restarts the worker from them.
        log.critical("projection failed, stopping without committing", exc_info=True)
        os._exit(EXIT_SINK_FAILED)
    log.debug("batch: %s", report)
