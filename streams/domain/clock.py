"""How far event time has provably progressed on one partition: its watermark. Pure.

Every record carries two times: ``occurred_at`` (the world) and the broker's append time (the
log; topics use LogAppendTime, so it is one clock and increases along a partition). Both are
stored in the log, so a replay sees exactly what live processing saw.

- Data moves event time to ``min(occurred_at, appended_at)``. An upstream clock that runs ahead
  cannot push time past the broker's.
- A tick (a ClockTicked record the worker appends every second) carries log time only. It moves
  event time forward by the log time elapsed since the last data record. So a quiet partition
  advances like the wall clock. A backfill of last month's events, published in a few seconds,
  advances by those few seconds, not to today.
- The watermark trails event time by the allowed lateness. An event at most that late changes
  nothing that was decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.event import Event, from_millis, to_millis
from streams.domain.routing import WORKER_SOURCE, derived_id


@dataclass(frozen=True)
class PartitionClock:
    event_time: datetime | None = None  # the furthest event time the data has shown
    last_append: datetime | None = None  # the append time of the latest data record
    watermark: datetime | None = None

    def on_data(self, occurred_at: datetime, appended_at: datetime, lateness: timedelta) -> PartitionClock:
        reached = min(occurred_at, appended_at)
        event_time = reached if self.event_time is None else max(self.event_time, reached)
        return PartitionClock(event_time, appended_at, _later(self.watermark, event_time - lateness))

    def on_tick(self, appended_at: datetime, lateness: timedelta) -> PartitionClock:
        if self.event_time is None or self.last_append is None:
            return self  # no data yet: nothing says which era this partition lives in
        elapsed = max(appended_at - self.last_append, timedelta(0))
        reached = min(self.event_time + elapsed, appended_at)
        return PartitionClock(self.event_time, self.last_append, _later(self.watermark, reached - lateness))

    def to_dict(self) -> dict[str, int | None]:
        return {
            "event_time": _ms(self.event_time),
            "last_append": _ms(self.last_append),
            "watermark": _ms(self.watermark),
        }

    @classmethod
    def from_dict(cls, d: dict[str, int | None] | None) -> PartitionClock:
        if not d:
            return cls()
        return cls(_dt(d.get("event_time")), _dt(d.get("last_append")), _dt(d.get("watermark")))


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)


def _ms(t: datetime | None) -> int | None:
    return None if t is None else to_millis(t)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else from_millis(ms)


def announcement(tick_id: str, watermark: datetime, log_time: datetime | None = None) -> Event:
    """A progress announcement: ``tick_id`` (``<stage>/<partition>``) has passed ``watermark`` in event time and
    read its input up to ``log_time`` (the broker's append time), when given.

    It travels as a ClockTicked record after everything it covers, so a downstream partition that has read it
    has read every record its source will ever send for earlier times (within the allowed lateness). The id
    is a function of the announcement, so a repeat after a crash carries the same one."""
    stamp = f"{to_millis(watermark)}/{'' if log_time is None else to_millis(log_time)}"
    return Event(
        "ClockTicked",
        {
            "event_id": derived_id(f"{tick_id}@{stamp}", "progress"),
            "occurred_at": watermark,
            "source": WORKER_SOURCE,
            "tick_id": tick_id,
            "partition": int(tick_id.rsplit("/", 1)[1]),
            "log_time": log_time,
        },
    )
