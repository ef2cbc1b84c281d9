"""Reading the dead-letter topic back for people."""

from __future__ import annotations

import hashlib
from typing import Any

from schemas.codec import Codec
from streams.kafka_io import read_topic
from streams.settings import Settings


async def list_deadletters(settings: Settings, codec: Codec) -> list[dict[str, Any]]:
    """Each dead-lettered origin once, in topic order, without the payload bytes: they may hold phone numbers."""
    seen: dict[str, dict[str, Any]] = {}
    redriven: dict[str, str] = {}
    async for message in read_topic(settings, settings.topic("deadletter")):
        event = codec.decode(message.value)
        fields = event.fields
        if event.type == "DeadLetterRedriven":  # alarmflow deadletter redrive sent this origin again
            to = f"{fields['redrive_topic']}/{fields['redrive_partition']}/{fields['redrive_offset']}"
            redriven.setdefault(fields["origin"], to)
            continue
        if fields["origin"] in seen:
            continue
        payload: bytes = fields["payload"]
        seen[fields["origin"]] = {
            "origin": fields["origin"],
            "error_class": fields["error_class"],
            "reason": fields["reason"],
            "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "dead_lettered_at": message.origin,
        }
    return [{**r, "redriven_as": redriven.get(r["origin"])} for r in seen.values()]
