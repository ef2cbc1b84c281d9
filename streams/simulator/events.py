"""What the simulator yields: one message to publish, and the tally of a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from streams.domain.district import LOCAL_TZ
from streams.simulator.stamps import from_ms


class Delivery(StrEnum):
    """How a message relates to the simulated facts."""

    ORIGINAL = "ORIGINAL"  # the first delivery of an event
    DUPLICATE = "DUPLICATE"  # the same event (same event_id) delivered again
    MALFORMED = "MALFORMED"  # a broken message; the gate must reject it


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One message: its simulated publish time (≥ occurred_ms; later when held back), its topic suffix
    (``alarms`` or ``case-events``), its Kafka key, and the value: the contract's JSON form, or raw bytes.

    A MALFORMED value is either raw bytes (not Avro single-object encoding) or a JSON-form dict that the
    contract rejects (a required field is missing); ``type`` names the record it was made from.
    """

    publish_ms: int
    occurred_ms: int
    topic: str
    key: str | None
    type: str
    value: dict[str, Any] | bytes
    delivery: Delivery = Delivery.ORIGINAL

    @property
    def published_at(self) -> datetime:
        return from_ms(self.publish_ms)

    @property
    def occurred_at(self) -> datetime:
        return from_ms(self.occurred_ms)


@dataclass(frozen=True)
class Summary:
    """What a run produced: original events by record, re-deliveries, broken messages and the event-time span."""

    by_type: Mapping[str, int]
    duplicates: int
    malformed: int
    first: datetime | None
    last: datetime | None

    @property
    def events(self) -> int:
        return sum(self.by_type.values())

    @property
    def messages(self) -> int:
        return self.events + self.duplicates + self.malformed

    def lines(self) -> list[str]:
        span = f"{_local(self.first)} .. {_local(self.last)}" if self.first and self.last else "(empty)"
        rows = [f"  {name:<20} {count:>10}" for name, count in sorted(self.by_type.items())]
        return [
            f"{self.messages} messages: {self.events} events, {self.duplicates} duplicates, {self.malformed} malformed",
            *rows,
            f"  event time {span}",
        ]


def _local(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


@dataclass
class Tally:
    """Counts SimEvents as they pass."""

    by_type: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    malformed: int = 0
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, event: SimEvent) -> None:
        if event.delivery is Delivery.DUPLICATE:
            self.duplicates += 1
        elif event.delivery is Delivery.MALFORMED:
            self.malformed += 1
        else:
            self.by_type[event.type] += 1
            t = event.occurred_ms
            self.first_ms = t if self.first_ms is None else min(self.first_ms, t)
            self.last_ms = t if self.last_ms is None else max(self.last_ms, t)

    @property
    def count(self) -> int:
        return self.by_type.total() + self.duplicates + self.malformed

    def summary(self) -> Summary:
        first = None if self.first_ms is None else from_ms(self.first_ms)
        last = None if self.last_ms is None else from_ms(self.last_ms)
        return Summary(dict(self.by_type), self.duplicates, self.malformed, first, last)
