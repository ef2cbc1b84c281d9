"""The event value every layer passes around; free of any codec so pure domain code can use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def to_millis(at: datetime) -> int:
    """Epoch milliseconds, in integer arithmetic (a float timestamp can be a millisecond off)."""
    return (at - EPOCH) // MILLISECOND


def from_millis(ms: int) -> datetime:
    return EPOCH + ms * MILLISECOND


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: its record name, its fields (read-only by convention) and its writer version."""

    type: str
    fields: Mapping[str, Any]
    writer: str = ""

    @property
    def event_id(self) -> str:
        return str(self.fields["event_id"])

    @property
    def occurred_at(self) -> datetime:
        value: datetime = self.fields["occurred_at"]
        return value

    @property
    def source(self) -> str:
        return str(self.fields["source"])
