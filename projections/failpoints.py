"""Injected ClickHouse write failures, for the fault suite (``ALARMFLOW_FAILPOINTS``); off unless set.

``sink.write=<mode>:<n>``, comma-separated, each counting the calls to ``write``:
- ``transient:N``: the first N calls fail with a transient error before writing (the projector retries);
- ``lost_ack:N``: the N-th call writes, then fails as if the acknowledgement were lost (the retry carries
  the same deduplication token, so ClickHouse drops it);
- ``permanent:N``: the N-th call fails with a permanent error (the worker stops without committing, exit 70,
  and a supervisor restarts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projections.errors import ProjectionError, TransientSinkError
from projections.tables import Rows

MODES = ("transient", "lost_ack", "permanent")


@dataclass(frozen=True)
class FailPoint:
    mode: str
    n: int


def parse(spec: str) -> list[FailPoint]:
    points = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rule = part.partition("=")
        mode, _, n = rule.partition(":")
        if name != "sink.write" or mode not in MODES or not n.isdigit() or int(n) < 1:
            raise ProjectionError(f"ALARMFLOW_FAILPOINTS: {part!r} is not sink.write=<{'|'.join(MODES)}>:<n>")
        points.append(FailPoint(mode, int(n)))
    return points


class FailingSink:
    """A ProjectionSink that fails on purpose at the configured writes, and otherwise does what the real one does."""

    def __init__(self, sink: Any, points: list[FailPoint]) -> None:
        self.sink, self.points, self.calls = sink, points, 0

    def high_water(self, table: str, topic: str) -> dict[int, int]:
        result: dict[int, int] = self.sink.high_water(table, topic)
        return result

    def existing(self, batch: Sequence[Rows]) -> dict[str, set[Any]]:
        result: dict[str, set[Any]] = self.sink.existing(batch)
        return result

    def write(self, rows: Rows, token: str) -> None:
        self.calls += 1
        for p in self.points:
            if p.mode == "transient" and self.calls <= p.n:
                raise TransientSinkError(f"failpoint: transient failure of write {self.calls}")
            if p.mode == "permanent" and self.calls == p.n:
                raise ProjectionError(f"failpoint: permanent failure of write {self.calls}")
        self.sink.write(rows, token)
        for p in self.points:
            if p.mode == "lost_ack" and self.calls == p.n:
                raise TransientSinkError(f"failpoint: write {self.calls} done, its acknowledgement lost")
