"""alarmflow's public event contract: the .avsc files, the registry and the codec."""

from schemas.codec import Codec, Event
from schemas.registry import RecordSchema, SchemaRegistry

__all__ = ["Codec", "Event", "RecordSchema", "SchemaRegistry"]
