"""The triage engine: one alarms partition's triage, its clock, and the alarms it has already seen. Pure.

Every alarm is triaged once per ``alarm_id``: a re-send, with the same event id or a new one, and even
one whose location now resolves to another street, is recognised here (alarms are keyed by
``alarm_id``, so every copy comes to this partition) and triaged no more, so a case is dispatched
once across streets. The first copy in the log wins; it is remembered for the retention.

An alarm whose category the district's taxonomy does not know breaks the contract (``category`` is "a code
of the district's taxonomy") and cannot be routed: it is dead-lettered (``UnknownCategory``) and not
remembered, so once the taxonomy has the code, ``alarmflow deadletter redrive`` sends it through again.

After a batch whose watermark moved, the engine announces it (ClockTicked ``alarms/<n>``) to every
routing partition, once the batch's triages are acknowledged: the street engines merge alarms from
every alarms partition and trust an event time only once all of them have passed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.event import Event
from streams.domain.clock import PartitionClock, announcement
from streams.domain.district import Disposition, District
from streams.domain.engine import META, Agenda, Changes, Emit, Record, flush_order
from streams.domain.routing import Alarm, decide, derived_dead_letter, triaged_event

UNKNOWN_CATEGORY = "UnknownCategory"


@dataclass(frozen=True)
class Seen:
    """The copy of an alarm that was triaged."""

    event_id: str
    at: datetime


@dataclass
class TriageMeta:
    clock: PartitionClock = field(default_factory=PartitionClock)
    read_to: datetime | None = None  # the append time of the latest record read (ticks included)
    announced: tuple[datetime, datetime | None] | None = None


@dataclass
class TriagePartition:
    meta: TriageMeta
    seen: dict[str, Seen]
    expiries: Agenda = field(default_factory=Agenda)
    changes: Changes = field(default_factory=Changes)


class TriageEngine:
    def __init__(
        self,
        district: District,
        lateness: timedelta,
        retention: timedelta,
        routing_partitions: int,
        token: Callable[[str], str],
    ) -> None:
        self.district, self.lateness, self.retention = district, lateness, retention
        self.routing_partitions, self.token = routing_partitions, token
        self.partitions: dict[int, TriagePartition] = {}

    def load(self, partition: int, meta: TriageMeta | None, seen: Iterable[tuple[str, Seen]]) -> None:
        state = TriagePartition(meta or TriageMeta(), dict(seen))
        for alarm_id, s in state.seen.items():
            state.expiries.set(alarm_id, s.at + self.retention)
        self.partitions[partition] = state

    def loaded(self, partition: int) -> bool:
        return partition in self.partitions

    def forget(self) -> None:
        self.partitions.clear()

    def flush(self, partition: int) -> list[tuple[str, Seen | TriageMeta | None]]:
        state = self.partitions[partition]
        return flush_order(state.seen.__getitem__, state.changes, state.meta)

    def on_record(self, record: Record) -> list[Emit]:
        state = self.partitions[record.partition]
        event = record.event
        meta = state.meta
        out: list[Emit] = []
        if meta.read_to is None or record.appended_at > meta.read_to:
            meta.read_to = record.appended_at
        if event.type == "ClockTicked":
            if not record.own or event.fields["tick_id"] != f"tick/{record.partition}":
                return out
            meta.clock = meta.clock.on_tick(record.appended_at, self.lateness)
        elif event.type == "AlarmReceived":
            out += self._triage(state, record)
            meta.clock = meta.clock.on_data(event.occurred_at, record.appended_at, self.lateness)
        state.changes.put(META)
        watermark = meta.clock.watermark
        if watermark is not None:
            for alarm_id in state.expiries.pop_before(watermark):
                del state.seen[alarm_id]
                state.changes.delete(alarm_id)
        return out

    def _triage(self, state: TriagePartition, record: Record) -> list[Emit]:
        fields = record.event.fields
        alarm_id = fields["alarm_id"]
        if alarm_id in state.seen:
            return []  # a re-send of an alarm already triaged: the first copy decides
        if self.district.category(fields["category"]) is None:
            return [Emit("deadletter", unknown_category(record))]
        phone = fields.get("caller_phone")
        alarm = Alarm.from_fields(fields, self.token(phone) if phone else None)
        decision, location = decide(alarm, self.district)
        triaged = triaged_event(alarm, decision, location)
        state.seen[alarm_id] = Seen(alarm.event_id, alarm.occurred_at)
        state.changes.put(alarm_id)
        state.expiries.set(alarm_id, alarm.occurred_at + self.retention)
        out = [Emit("case-events", triaged)]
        if decision.disposition == Disposition.NON_POLICE and location.street_code is not None:
            out.append(Emit("routing", triaged, key=location.street_code))
        return out

    def announcements(self, partition: int) -> list[Emit]:
        """After a batch: how far this alarms partition has been triaged, in event time and in log time, to every
        routing partition."""
        state = self.partitions[partition]
        at = state.meta.clock.watermark
        if at is None:
            return []
        now = (at, state.meta.read_to)
        if state.meta.announced == now:
            return []
        state.meta.announced = now
        state.changes.put(META)
        return [
            Emit("routing", announcement(f"alarms/{partition}", at, state.meta.read_to), partition=target, after=True)
            for target in range(self.routing_partitions)
        ]


def unknown_category(record: Record) -> Event:
    """The DeadLettered for an alarm whose category is not in the taxonomy: its bytes kept for a re-drive."""
    f = record.event.fields
    reason = (
        f"category {f['category']!r} of alarm {f['alarm_id']!r} is not in the district's taxonomy "
        "(categories.json): add it, restart the workers, then re-drive"
    )
    return derived_dead_letter(record.origin, record.key, record.value, UNKNOWN_CATEGORY, reason, record.appended_at)
