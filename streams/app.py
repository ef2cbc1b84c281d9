"""The Faust app: topics, the projection agent and the read-only query endpoint. Agents stay thin."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.types import EventT, StreamT
from faust.web import Request, Response, View

from projections.client import connect, describe
from projections.errors import ProjectionError
from projections.migrate import migrate
from projections.query import run_readonly
from projections.sink import ClickHouseSink
from schemas.codec import Codec, Event
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams.ingest import Message, utc_from_millis
from streams.kafka_admin import DEADLETTER_MAX_BYTES, ensure_topics
from streams.projector import Projector
from streams.settings import TOPIC_SUFFIXES, Settings

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


def _message(event: EventT[bytes]) -> Message:
    m = event.message
    return Message(m.topic, m.partition, m.offset, m.key, m.value or b"", utc_from_millis(m.timestamp * 1000))


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=DEADLETTER_MAX_BYTES + 64 * 1024,
        web_bind=settings.web_bind,
        web_host="127.0.0.1",
        web_port=settings.web_port,
        stream_buffer_maxsize=max(settings.batch_max * 2, 4096),
        broker_commit_every=settings.batch_max,
        broker_commit_interval=1.0,
        # A killed worker's partitions move after 10 s instead of Faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        loghandlers=[],
    )
    codec = Codec()
    client = connect(settings.dsn)
    applied = migrate(client)
    log.info("ClickHouse %s ready (migrations applied now: %s)", describe(settings.dsn), applied or "none")
    projector = Projector(
        codec,
        Limits(max_bytes=settings.max_message_bytes, max_future=timedelta(hours=settings.max_future_hours)),
        Redactor(settings.phone_key()),
        ClickHouseSink(client),
        FaustPublisher(app, codec),
        settings.topic("deadletter"),
    )
    inputs = app.topic(
        *(settings.topic(s) for s in TOPIC_SUFFIXES),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(inputs, concurrency=1)
    async def project(events: StreamT[bytes]) -> None:
        stream = cast(Stream[bytes], events)  # take_events lives on Stream, not on StreamT
        async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_ms / 1000):
            # Hold each message: take_events acks in a finally, even when we fail. Our own
            # ack after the write is what lets the refcount reach zero and the offset commit.
            for event in batch:
                event.message.incref()
            try:
                report = await projector.handle([_message(e) for e in batch])
            except ProjectionError as exc:
                log.critical("projection failed permanently, stopping without committing: %s", exc)
                os._exit(EXIT_SINK_FAILED)
            for event in batch:
                await stream.ack(event)
            log.debug("batch: %s", report)

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Another worker may have written these partitions meanwhile: re-read the marks.
        projector.forget_marks()

    app.on_partitions_revoked.connect(_rebalanced)
    app.on_partitions_assigned.connect(_rebalanced)

    @app.page("/query")
    class QueryView(View):
        """Read-only SQL through the worker that owns the embedded database."""

        async def post(self, request: Request) -> Response:
            body = await request.json()
            sql, params = body.get("sql", ""), body.get("parameters") or {}
            try:
                result = await projector.call(lambda: run_readonly(client, sql, params))
            except ProjectionError as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json({"columns": result.columns, "rows": result.rows})

    return app


def run_worker(settings: Settings) -> None:
    """Run the Faust worker in the foreground until SIGTERM or Ctrl-C."""
    topics = [settings.topic(s) for s in TOPIC_SUFFIXES]
    asyncio.run(ensure_topics(settings.kafka_bootstrap, topics, settings.partitions))
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
