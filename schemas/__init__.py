"""alarmflow's public event contract: the .avsc files, the registry, the codec and the contract checks."""

from schemas.codec import Codec
from schemas.event import Event

__all__ = ["Codec", "Event"]
