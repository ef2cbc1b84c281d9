"""The gate every consumed message passes, and the rows and dead-letter records it yields. Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from schemas.codec import Codec
from schemas.errors import PoisonInput
from schemas.event import Event, from_millis
from schemas.validation import Limits, accept
from streams.domain.routing import WORKER_SOURCE

DEADLETTER_NAMESPACE = uuid.UUID("5f0c8a52-3f7e-4d0e-9a61-6a1f0c2b9d11")


@dataclass(frozen=True, slots=True)
class Message:
    """A consumed Kafka record, independent of the client library that read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: datetime

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class Accepted:
    message: Message
    event: Event


@dataclass(frozen=True, slots=True)
class Rejected:
    message: Message
    error: PoisonInput


def classify(codec: Codec, limits: Limits, message: Message) -> Accepted | Rejected:
    """Accept a message, or reject it with the reason; the topic suffix is what follows the prefix's dot."""
    suffix = message.topic.rsplit(".", 1)[-1]
    try:
        event = accept(
            codec, message.value, key=message.key, topic_suffix=suffix, published_at=message.timestamp, limits=limits
        )
    except PoisonInput as error:
        return Rejected(message, error)
    return Accepted(message, event)


def dead_letter(rejected: Rejected) -> Event:
    """The DeadLettered event for a rejected message; its id is derived, so re-deliveries match."""
    message = rejected.message
    return Event(
        "DeadLettered",
        {
            "event_id": str(uuid.uuid5(DEADLETTER_NAMESPACE, message.origin)),
            "occurred_at": message.timestamp,
            "source": WORKER_SOURCE,
            "origin": message.origin,
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "source_key": message.key,
            "error_class": rejected.error.error_class,
            "reason": rejected.error.reason,
            "payload": message.value,
        },
    )


def utc_from_millis(millis: float) -> datetime:
    return from_millis(round(millis))
