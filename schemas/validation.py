"""Contract rules that Avro cannot express: non-empty ids, UUIDs, ranges, time bounds, size, key.

Pure: the reference time is the message's publish time, so a replay decides the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import Codec
from schemas.errors import InvalidTime, InvalidValue, KeyMismatch, MissingField, TooLarge, WrongTopic
from schemas.event import Event

EPOCH_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)

# The worker's own clock: it ticks every partitioned input whose event time it tracks (alarms, case-events).
ANY_TOPIC = frozenset({"ClockTicked"})


@dataclass(frozen=True)
class Limits:
    """Bounds for accepting input."""

    max_bytes: int = 64 * 1024
    max_future: timedelta = timedelta(hours=24)


def _required(name: str) -> bool:
    return name in ("event_id", "source") or name.endswith("_id")


def _check_fields(fields: Mapping[str, Any], spec: list[Mapping[str, Any]], path: str) -> None:
    for field in spec:
        name, value = field["name"], fields.get(field["name"])
        where = f"{path}{name}"
        if field["type"] == "string" and _required(name) and not value:
            raise MissingField(f"{where}: required field is empty")
        low, high = field.get("alarmflow.min"), field.get("alarmflow.max")
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            raise InvalidValue(f"{where}: {value!r} is outside [{low}, {high}]")
        nested = field["type"]
        if isinstance(nested, dict) and nested.get("type") == "record" and isinstance(value, Mapping):
            _check_fields(value, nested["fields"], f"{where}.")


def check_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_bytes:
        raise TooLarge(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")


def check_event(
    codec: Codec,
    event: Event,
    published_at: datetime,
    limits: Limits,
    key: bytes | None,
    topic_suffix: str | None = None,
) -> None:
    """Raise the PoisonInput that ``event`` deserves, if any; ``key``/``topic_suffix`` None skip those checks."""
    schema = codec.schema_for(event)
    if topic_suffix is not None and topic_suffix != schema.topic and event.type not in ANY_TOPIC:
        raise WrongTopic(f"{event.type} belongs on the {schema.topic!r} topic, not {topic_suffix!r}")
    _check_fields(event.fields, schema.raw["fields"], "")
    try:
        uuid.UUID(event.event_id)
    except ValueError:
        raise InvalidValue(f"event_id: {event.event_id!r} is not a UUID") from None
    occurred = event.occurred_at
    if occurred < EPOCH_FLOOR:
        raise InvalidTime(f"occurred_at {occurred.isoformat()} is before 2000-01-01")
    if occurred > published_at + limits.max_future:
        raise InvalidTime(
            f"occurred_at {occurred.isoformat()} is more than {limits.max_future} after "
            f"the message was published ({published_at.isoformat()})"
        )
    if key is not None and key.decode("utf-8", "replace") != codec.key_of(event):
        raise KeyMismatch(f"Kafka key {key!r} differs from {schema.key_field} {codec.key_of(event)!r}")


def accept(
    codec: Codec, data: bytes, *, key: bytes | None, topic_suffix: str, published_at: datetime, limits: Limits
) -> Event:
    """Size, decode, then contract checks: the one gate every consumed message passes.

    On the wire a key is required: without it Kafka spreads one case over partitions.
    """
    check_size(data, limits)
    event = codec.decode(data)
    if key is None:
        field = codec.schema_for(event).key_field
        raise KeyMismatch(f"the message has no key; expected {field} {codec.key_of(event)!r}")
    check_event(codec, event, published_at, limits, key, topic_suffix)
    return event
