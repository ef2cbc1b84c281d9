"""Imperfect input: re-deliveries, bounded disorder and broken messages, laid over the clean event stream.

The bound: an event is published at most ``disorder_s`` after its own occurred_at, and never before an
earlier-published event more than ``disorder_s`` younger than it. Releases are ordered by a heap of
(occurred + hold); an event leaves once the clean stream has passed its release time, so publish times
never decrease.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterable, Iterator
from typing import Any

from streams.simulator.config import SimConfig
from streams.simulator.events import Delivery, SimEvent

AVRO_MAGIC = b"\xc3\x01"
KEY_FIELDS = ("alarm_id", "case_id")


def imperfect(events: Iterable[SimEvent], config: SimConfig) -> Iterator[SimEvent]:
    """The same events, some held back (within the lateness), some twice, with some broken messages added."""
    rng = config.rng("imperfect")
    lateness = int(config.disorder_s * 1000)
    heap: list[tuple[int, int, SimEvent]] = []
    seq = 0
    for event in events:
        while heap and heap[0][0] <= event.occurred_ms:
            yield heapq.heappop(heap)[2]
        for copy in _deliveries(event, config, lateness, rng):
            seq += 1
            heapq.heappush(heap, (copy.publish_ms, seq, copy))
    while heap:
        yield heapq.heappop(heap)[2]


def _deliveries(event: SimEvent, config: SimConfig, lateness: int, rng: random.Random) -> tuple[SimEvent, ...]:
    """The event (held back or not), maybe its re-delivery, maybe a broken message; usually just the event."""
    held, twice, broken = rng.random(), rng.random(), rng.random()
    if held >= config.disorder_share and twice >= config.duplicates and broken >= config.malformed:
        return (event,)  # the common case, kept cheap: 3 draws and no copies
    first = event
    if lateness and held < config.disorder_share:
        first = _at(event, event.occurred_ms + rng.randint(1, lateness), Delivery.ORIGINAL, event.value)
    out = [first]
    if twice < config.duplicates:
        again = max(first.publish_ms, event.occurred_ms + rng.randint(0, lateness))
        out.append(_at(event, again, Delivery.DUPLICATE, event.value))
    if broken < config.malformed:
        out.append(_at(event, event.occurred_ms, Delivery.MALFORMED, malformed(event, rng)))
    return tuple(out)


def _at(event: SimEvent, publish_ms: int, delivery: Delivery, value: dict[str, Any] | bytes) -> SimEvent:
    return SimEvent(publish_ms, event.occurred_ms, event.topic, event.key, event.type, value, delivery)


def malformed(event: SimEvent, rng: random.Random) -> dict[str, Any] | bytes:
    """A broken message made from ``event``: a required field dropped, the JSON cut short, or bytes that look
    like Avro single-object encoding with a fingerprint no schema has."""
    if not isinstance(event.value, dict):
        raise TypeError("only a well-formed event can be broken")
    variant = rng.randrange(3)
    if variant == 0:
        present = [k for k in ("event_id", "occurred_at", *KEY_FIELDS) if k in event.value]
        dropped = present[rng.randrange(len(present))]
        return {k: v for k, v in event.value.items() if k != dropped}
    if variant == 1:
        text = json.dumps(event.value, ensure_ascii=False)
        return text[: rng.randint(1, len(text) - 1)].encode()
    return AVRO_MAGIC + rng.randbytes(8) + rng.randbytes(rng.randint(0, 60))
