"""The event value every layer passes around; free of any codec so pure domain code can use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
