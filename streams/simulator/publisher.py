"""Kafka mode: publish a run with the project's codec and producer, paced in simulated time.

An event is sent at wall time t0 + (publish time − start) / speed, and never before its occurred_at has
passed on the wall clock: the gate and the SLA watermark expect event times in the past.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from schemas.codec import Codec
from streams.domain.district import District
from streams.kafka_io import producer, require_topics
from streams.settings import Settings
from streams.simulator.config import SimConfig
from streams.simulator.events import Delivery, SimEvent, Summary, Tally
from streams.simulator.generator import generate
from streams.simulator.progress import Progress, SpanProgress

TOPICS = ("alarms", "case-events")
SETTLE_EVERY = 5000  # delivery futures awaited together, not one by one
MIN_SLEEP_S = 0.005  # below this, pacing is not worth a trip through the event loop


class Pacer:
    """How long to wait before sending an event: speed 0 sends as fast as possible."""

    def __init__(self, speed: float, start_ms: int, wall: Callable[[], float] = time.time) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed, self.start_ms, self.wall = speed, start_ms, wall
        self.t0 = wall()

    def wait_s(self, event: SimEvent) -> float:
        now = self.wall()
        wait = event.occurred_ms / 1000 - now  # > 0: the event lies in the future; wait for it, always
        if self.speed > 0:
            paced = self.t0 + (event.publish_ms - self.start_ms) / 1000 / self.speed - now
            wait = max(wait, paced if paced >= MIN_SLEEP_S else 0.0)
        return max(wait, 0.0)


def encode(codec: Codec, event: SimEvent) -> tuple[bytes | None, bytes]:
    """(key, value) on the wire: Avro single-object encoding, or a broken message's bytes as they are."""
    key = event.key.encode() if event.key is not None else None
    if isinstance(event.value, bytes):
        return key, event.value
    if event.delivery is Delivery.MALFORMED:
        return key, json.dumps(event.value, ensure_ascii=False).encode()
    record = codec.from_json(event.value)
    return codec.key_of(record).encode(), codec.encode(record)


async def publish(
    settings: Settings,
    config: SimConfig,
    district: District,
    speed: float = 0.0,
    progress: Progress | None = None,
    codec: Codec | None = None,
) -> Summary:
    """Publish the run to ``<prefix>.alarms`` and ``<prefix>.case-events``; with no start, it ends now."""
    config = config.resolved(datetime.now(UTC))
    codec = codec or Codec()
    await require_topics(settings, [settings.topic(t) for t in TOPICS])
    kafka = producer(settings)
    await kafka.start()
    tally, tracker = Tally(), SpanProgress(config, progress)
    pacer = Pacer(speed, config.start_ms())
    pending: list[asyncio.Future[object]] = []
    try:
        for event in generate(config, district):
            wait = pacer.wait_s(event)
            if wait > 0:
                await _settle(pending)
                await asyncio.sleep(wait)
            key, value = encode(codec, event)
            pending.append(await kafka.send(settings.topic(event.topic), value, key=key))
            tally.add(event)
            tracker.step(event, tally.count)
            if len(pending) >= SETTLE_EVERY:
                await _settle(pending)
        await _settle(pending)
    finally:
        await kafka.stop()
    tracker.done(tally.count)
    return tally.summary()


async def _settle(pending: list[asyncio.Future[object]]) -> None:
    if pending:
        await asyncio.gather(*pending)
        pending.clear()
