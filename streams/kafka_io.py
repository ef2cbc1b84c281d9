"""Publishing and reading topics with aiokafka, for the CLI and the tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import Codec
from schemas.errors import PoisonInput
from schemas.event import Event
from schemas.validation import Limits, check_event
from streams.errors import PublishError
from streams.ingest import Message, utc_from_millis
from streams.kafka_admin import list_topics
from streams.settings import Settings


@dataclass(frozen=True)
class LineError:
    """A line of a JSONL file that could not be published."""

    line: int
    error_class: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.error_class}: {self.reason}"


def parse_lines(codec: Codec, lines: Iterable[str | bytes], limits: Limits) -> Iterator[tuple[int, Event | LineError]]:
    """Each non-blank line as an Event of the current schema, or a LineError saying why not.

    Lines may come as bytes (a file read as it is): one line that is not UTF-8 is rejected alone."""
    now = datetime.now(UTC)
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
            yield number, LineError(number, "Undecodable", reason)
            continue
        if not line.strip():
            continue
        try:
            event = codec.from_json(json.loads(line))
            check_event(codec, event, now, limits, key=None)
        except json.JSONDecodeError as exc:
            yield number, LineError(number, "Undecodable", f"not JSON: {exc.msg} at column {exc.colno}")
        except PoisonInput as exc:
            yield number, LineError(number, exc.error_class, exc.reason)
        else:
            yield number, event


def producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1 << 20,
    )


async def publish_events(
    settings: Settings,
    codec: Codec,
    items: Iterable[tuple[int, Event | LineError]],
    on_progress: Callable[[int], None] = lambda n: None,
) -> tuple[int, list[LineError]]:
    """Encode and send each event to its topic with its key; bad lines are collected, not fatal."""
    sent, errors = 0, []
    pending: list[asyncio.Future[object]] = []
    await require_topics(settings, [settings.topic(s) for s in codec.registry.topics()])
    kafka = producer(settings)
    await kafka.start()
    try:
        for _, item in items:
            if isinstance(item, LineError):
                errors.append(item)
                continue
            topic = settings.topic(codec.topic_of(item))
            pending.append(await kafka.send(topic, codec.encode(item), key=codec.key_of(item).encode()))
            if len(pending) >= 5000:
                sent += await settle(pending, on_progress)
        sent += await settle(pending, on_progress)
    finally:
        await kafka.stop()
    return sent, errors


async def require_topics(settings: Settings, names: list[str]) -> None:
    """Fail fast and clearly, instead of aiokafka's 40-second metadata wait, when a topic is missing."""
    existing = set(await list_topics(settings.kafka_bootstrap))
    missing = sorted(set(names) - existing)
    if missing:
        raise PublishError(f"topics {missing} do not exist on {settings.kafka_bootstrap}: run `alarmflow kafka up`")


async def settle(pending: list[asyncio.Future[object]], on_progress: Callable[[int], None]) -> int:
    """Wait for a window of sends to be acknowledged; report and return how many there were."""
    await asyncio.gather(*pending)
    n = len(pending)
    pending.clear()
    on_progress(n)
    return n


async def send_raw(settings: Settings, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> None:
    """Send raw (key, value) pairs: for tests and for replaying captured bytes."""
    kafka = producer(settings)
    await kafka.start()
    try:
        futures = [await kafka.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await kafka.stop()


async def read_topic(
    settings: Settings, topic: str, *, follow: bool = False, idle_ms: int = 2000
) -> AsyncIterator[Message]:
    """Every message of ``topic`` from the start; stops at the end unless ``follow``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            for records in batch.values():
                for r in records:
                    yield Message(r.topic, r.partition, r.offset, r.key, r.value or b"", utc_from_millis(r.timestamp))
            if not follow:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    return
    finally:
        await consumer.stop()


def read_jsonl(path: Path) -> Iterator[bytes]:
    """The file's lines as bytes: each is decoded on its own, so one bad byte costs one line."""
    with path.open("rb") as handle:
        yield from handle
