"""What every agent shares: one way to read a Faust event as a Message, and raw-bytes topics."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import EventT, TopicT

from streams.ingest import Message, utc_from_millis


def as_message(event: EventT[Any]) -> Message:
    m = event.message
    return Message(m.topic, m.partition, m.offset, m.key, m.value or b"", utc_from_millis(m.timestamp * 1000))


def raw_topic(app: faust.App, *names: str) -> TopicT:
    """Topics of Avro bytes: Faust passes them through; our codec does the decoding."""
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
