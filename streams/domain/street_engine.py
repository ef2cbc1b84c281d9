"""The street engine: one routing partition's dispatch book and hotspots. Pure.

A routing partition carries, keyed by street: every located non-police AlarmTriaged (from triage), the
AssignmentReleased and CaseReassigned of its cases (from the case engine) and each alarms partition's
progress (ClockTicked ``alarms/<n>``).

Dispatch. Each triaged alarm is dispatched once, to the on-duty member with the fewest open cases
(``assign``). A release ends the case's hold on its member, an escalation moves it. The load is not
stored: it is counted from the holders (open ones, per member), so each event changes one entry and a
crash that logs part of a batch cannot leave a count out of step with its cases. Decisions follow
the partition's log order, so the same log gives the same assignments, and the load always equals
the open cases once every release is read. A released case is remembered for the retention, so a
re-delivered alarm is not dispatched again, then forgotten.

Hotspots. Alarms wait until every alarms partition has passed their time (the minimum of the announced
watermarks); then they and the window expiries are folded in event-time order, so the episodes are a
function of the alarms' times, not of their arrival order. A spot whose alarms have all left the window
and that is not hot is forgotten. A spot is stored as its header (``s/<hotspot_id>``) and one small entry per
alarm in its window (``w/<hotspot_id>⇥<ms>|<case>``), so a batch logs the alarms it added and removed, not
the whole window again.

A spot is one logical entry over many keys, so a crash that logs part of a batch must not leave a window
entry (which says "this alarm is folded") without the header that folded it (its episode). The header is
logged after every change of its window, with the log offsets of the records that created it (``born``) and
last changed it (``changed``) and the newest alarm that left the window (``horizon``); an entry's value is
its header's ``changed`` when it was logged. Written entries come before their header, deletions after it,
and a forgotten spot's header is deleted before its entries. On load an entry counts only if its header is
there, logged it (born ≤ value ≤ changed) and has not seen it leave (newer than the horizon); any other is
deleted, and the batch read again folds its alarm as the first time.

After a batch whose watermark moved, the engine announces it (ClockTicked ``routing/<n>``) to every
case-events partition: every dispatch for an alarm up to that time has been published before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.event import Event, from_millis, to_millis
from streams.domain.clock import announcement
from streams.domain.district import District
from streams.domain.engine import META, Agenda, Changes, Emit, Frontier, Record, flush_order, sources_of
from streams.domain.hotspots import Delta, Entry, HotspotPolicy, Sighting, Spot, expire, family, new_spot, observe
from streams.domain.routing import assign, dispatched_event, team_for

DERIVED = frozenset({"AlarmTriaged", "AssignmentReleased", "CaseReassigned", "ClockTicked"})


@dataclass(frozen=True)
class Holder:
    """Who holds a dispatched case ('' for the command room), and when it ended (None while open)."""

    assignee: str
    released_at: datetime | None = None


@dataclass
class StreetMeta:
    alarms: dict[int, datetime] = field(default_factory=dict)  # each alarms partition's announced watermark
    alarms_read: dict[int, datetime] = field(default_factory=dict)  # and how far it has read, in log time
    announced: tuple[datetime, datetime | None] | None = None


@dataclass
class StreetPartition:
    meta: StreetMeta
    entries: dict[str, Any]  # h/<street>⇥<case>: Holder; s/<hotspot_id>: Spot; q/<ms>|<case>: Sighting
    # (the window entries w/… are held in their spots, and only their changes are logged)
    frontier: Frontier
    read: Frontier
    load: dict[str, int] = field(default_factory=dict)  # <street>⇥<member> → open cases, counted from the holders
    expiries: Agenda = field(default_factory=Agenda)  # spots, by their oldest alarm leaving the window
    waiting: Agenda = field(default_factory=Agenda)  # pending sightings, by their time
    released: Agenda = field(default_factory=Agenda)  # released holders, by when they may be forgotten
    changes: Changes = field(default_factory=Changes)

    def put(self, key: str, value: Any) -> None:
        self.changes.put(key, new=key not in self.entries)
        self.entries[key] = value

    def delete(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.changes.delete(key)


def holder_key(street: str, case: str) -> str:
    return f"h/{street}\t{case}"


def load_key(street: str, member: str) -> str:
    return f"{street}\t{member}"


def pending_key(s: Sighting) -> str:
    return f"q/{to_millis(s.at):015d}|{s.case_id}"


WINDOW = "w/"


def window_key(hotspot_id: str, entry: Entry) -> str:
    return f"{WINDOW}{hotspot_id}\t{to_millis(entry[0]):015d}|{entry[1]}"


def window_entry(key: str) -> tuple[str, Entry]:
    """(hotspot id, entry) of a window key."""
    hotspot_id, _, rest = key[len(WINDOW) :].rpartition("\t")
    ms, _, case = rest.partition("|")
    return hotspot_id, (from_millis(int(ms)), case)


def window_hotspot(key: str) -> str:
    """The hotspot id of a window key (without parsing its entry)."""
    return key[len(WINDOW) :].rpartition("\t")[0]


class StreetEngine:
    def __init__(
        self,
        district: District,
        policy: HotspotPolicy,
        alarm_partitions: int,
        case_partitions: int,
        retention: timedelta,
    ) -> None:
        self.district, self.policy, self.retention = district, policy, retention
        self.alarm_partitions, self.case_partitions = alarm_partitions, case_partitions
        self.partitions: dict[int, StreetPartition] = {}

    # ---- state ---------------------------------------------------------------------------------------------

    def load(self, partition: int, meta: StreetMeta | None, entries: Iterable[tuple[str, Any]]) -> None:
        meta = meta or StreetMeta()
        windows: dict[str, list[tuple[str, Entry, int]]] = {}
        stored: dict[str, Any] = {}
        for key, value in entries:
            if key.startswith(WINDOW):
                hotspot_id, entry = window_entry(key)
                windows.setdefault(hotspot_id, []).append((key, entry, value))
            else:
                stored[key] = value
        state = StreetPartition(
            meta,
            stored,
            Frontier(self.alarm_partitions, meta.alarms),
            Frontier(self.alarm_partitions, meta.alarms_read),
        )
        self.partitions[partition] = state
        for key, value in state.entries.items():
            if isinstance(value, Spot):
                _load_window(state, key, value, windows.pop(value.hotspot_id, []))
            self._index(state, key, value)
            if isinstance(value, Holder) and value.released_at is None and value.assignee:
                self._add_load(state, key[2:].split("\t", 1)[0], value.assignee, 1)
        for orphans in windows.values():  # entries whose header is not (or no longer) logged
            for wkey, _, _ in orphans:
                state.changes.delete(wkey)

    def loaded(self, partition: int) -> bool:
        return partition in self.partitions

    def forget(self) -> None:
        self.partitions.clear()

    def flush(self, partition: int) -> list[tuple[str, Any]]:
        state = self.partitions[partition]
        state.meta.alarms = dict(state.frontier.known)
        state.meta.alarms_read = dict(state.read.known)
        return flush_order(lambda k: _stored(state.entries, k), state.changes, state.meta)

    def open_cases(self, partition: int, street: str, member: str) -> int:
        return self.partitions[partition].load.get(load_key(street, member), 0)

    # ---- records -------------------------------------------------------------------------------------------

    def on_record(self, record: Record) -> list[Emit]:
        state = self.partitions[record.partition]
        event = record.event
        if event.type in DERIVED and not record.own:
            return []
        f = event.fields
        out: list[Emit] = []
        if event.type == "AlarmTriaged":
            out += self._dispatch(state, f)
            self._sighted(state, event)
        elif event.type == "AssignmentReleased":
            self._released(state, f)
        elif event.type == "CaseReassigned":
            self._reassigned(state, f)
        elif event.type == "ClockTicked":
            source = sources_of(f["tick_id"], "alarms")
            if source is not None:
                moved = state.frontier.announce(source, event.occurred_at)
                if f.get("log_time") is not None:
                    moved = state.read.announce(source, f["log_time"]) or moved
                if moved:
                    state.changes.put(META)
        watermark = state.frontier.watermark
        if watermark is not None:
            out += self._drain(state, watermark, record.offset)
            self._forget_released(state, watermark)
        return out

    def announcements(self, partition: int) -> list[Emit]:
        """After a batch: how far this partition has dispatched (in event time, and in the alarms' log time), to
        every case-events partition."""
        state = self.partitions[partition]
        at = state.frontier.watermark
        if at is None:
            return []
        now = (at, state.read.watermark)
        if state.meta.announced == now:
            return []
        state.meta.announced = now
        state.changes.put(META)
        return [
            Emit("case-events", announcement(f"routing/{partition}", *now), partition=target, after=True)
            for target in range(self.case_partitions)
        ]

    # ---- dispatch ------------------------------------------------------------------------------------------

    def _dispatch(self, state: StreetPartition, triaged: Mapping[str, Any]) -> list[Emit]:
        street, case = triaged["street_code"], triaged["case_id"]
        if holder_key(street, case) in state.entries:
            return []  # a re-delivery of a case already dispatched (open, or released within the retention)
        team = team_for(triaged, self.district)
        chosen = assign(
            self.district,
            team,
            street,
            triaged["grid_code"],
            triaged["occurred_at"],
            lambda member: state.load.get(load_key(street, member), 0),
        )
        state.put(holder_key(street, case), Holder(chosen.assignee_id or ""))
        if chosen.assignee_id:
            self._add_load(state, street, chosen.assignee_id, 1)
        return [Emit("case-events", dispatched_event(triaged, chosen, self.district))]

    @staticmethod
    def _add_load(state: StreetPartition, street: str, member: str, delta: int) -> None:
        key = load_key(street, member)
        n = state.load.get(key, 0) + delta
        if n > 0:
            state.load[key] = n
        else:
            state.load.pop(key, None)  # a member with no open case needs no entry

    def _reassigned(self, state: StreetPartition, f: Mapping[str, Any]) -> None:
        """An escalation moved the case: its load moves from the old holder to the new one."""
        key = holder_key(f["street_code"], f["case_id"])
        holder = state.entries.get(key)
        new = f["to_assignee"] or ""
        if not isinstance(holder, Holder) or holder.released_at is not None or holder.assignee == new:
            return
        if holder.assignee:
            self._add_load(state, f["street_code"], holder.assignee, -1)
        if new:
            self._add_load(state, f["street_code"], new, 1)
        state.put(key, Holder(new))

    def _released(self, state: StreetPartition, f: Mapping[str, Any]) -> None:
        """The case ended: its holder's load goes down once; the holder is kept for the retention."""
        key = holder_key(f["street_code"], f["case_id"])
        holder = state.entries.get(key)
        if not isinstance(holder, Holder) or holder.released_at is not None:
            return
        if holder.assignee:
            self._add_load(state, f["street_code"], holder.assignee, -1)
        released = Holder(holder.assignee, f["occurred_at"])
        state.put(key, released)
        self._index(state, key, released)

    def _forget_released(self, state: StreetPartition, watermark: datetime) -> None:
        for key in state.released.pop_before(watermark):
            state.delete(key)

    # ---- hotspots ------------------------------------------------------------------------------------------

    def _sighted(self, state: StreetPartition, event: Event) -> None:
        """Every alarm waits, even one older than the watermark (late, or re-delivered after a restart whose
        state is ahead of the input), so the drain folds it in order; one already folded is not added again, nor
        one no newer than the spot's horizon (its window has moved past it, so it would leave at once, and read
        again after a crash it would be folded into a window that has moved on)."""
        s = sighting(event, self.district)
        if s is None:
            return
        spot = state.entries.get(f"s/{s.hotspot_id}")
        if isinstance(spot, Spot) and (
            spot.has((s.at, s.case_id)) or (spot.horizon is not None and s.at <= spot.horizon)
        ):
            return  # folded already, or older than alarms that have left the window: it has left it too
        key = pending_key(s)
        if key not in state.entries:
            state.put(key, s)
            state.waiting.set(key, s.at)

    def _drain(self, state: StreetPartition, watermark: datetime, offset: int) -> list[Emit]:
        """Alarms and expiries up to the watermark, in event-time order (an expiry before an alarm at the same
        time). Spot updates are written before the pending entries they consume are deleted."""
        out: list[Emit] = []
        waiting, expiries = state.waiting, state.expiries
        consumed: list[str] = []
        while True:
            next_alarm = waiting.first()
            next_expiry = expiries.first()
            alarm_due = next_alarm is not None and next_alarm <= watermark
            expiry_due = next_expiry is not None and next_expiry <= watermark
            if not alarm_due and not expiry_due:
                break
            if expiry_due and (not alarm_due or next_expiry <= next_alarm):  # type: ignore[operator]
                assert next_expiry is not None
                for hotspot_id in expiries.pop_before(next_expiry + _TICK):
                    spot = state.entries.get(f"s/{hotspot_id}")
                    if isinstance(spot, Spot):
                        header, delta = spot.header, Delta()
                        spot, events = expire(spot, next_expiry, self.policy.rule(spot.family), delta)
                        out += [Emit("hotspots", e) for e in events]
                        self._keep(state, spot, header, delta, offset)
            else:
                assert next_alarm is not None
                for key in waiting.pop_before(next_alarm + _TICK):
                    s = state.entries[key]
                    consumed.append(key)
                    known = state.entries.get(f"s/{s.hotspot_id}")
                    before = None if known is None else known.header
                    delta = Delta()
                    if known is None:
                        known = new_spot(s)
                        known.born = offset
                    spot, events = observe(known, s, self.policy.rule(s.family), delta)
                    out += [Emit("hotspots", e) for e in events]
                    self._keep(state, spot, before, delta, offset)
        for key in consumed:
            state.delete(key)
        return out

    def _keep(self, state: StreetPartition, spot: Spot, header: Any, delta: Delta, offset: int) -> None:
        """Log what changed: the window entries added, then the header, and the entries removed (see the module
        doc for why in this order)."""
        key = f"s/{spot.hotspot_id}"
        for entry in delta.removed:
            state.changes.delete(window_key(spot.hotspot_id, entry))
        if not spot.entries and not spot.hot:  # nothing in the window, no episode: nothing to remember
            if state.entries.pop(key, None) is not None:
                state.changes.delete(key, first=True)
            state.expiries.set(spot.hotspot_id, None)
            return
        if delta.removed:
            newest = max(at for at, _ in delta.removed)
            spot.horizon = newest if spot.horizon is None else max(spot.horizon, newest)
        for entry in delta.added:
            state.changes.put(window_key(spot.hotspot_id, entry), new=True)
        if delta.added or delta.removed or spot.header != header or key not in state.entries:
            spot.changed = offset
            state.put(key, spot)
        self._index(state, key, spot)

    def _index(self, state: StreetPartition, key: str, value: Any) -> None:
        if isinstance(value, Spot):
            state.expiries.set(value.hotspot_id, value.next_expiry(self.policy.rule(value.family)))
        elif isinstance(value, Sighting):
            state.waiting.set(key, value.at)
        elif isinstance(value, Holder) and value.released_at is not None:
            state.released.set(key, value.released_at + self.retention)


def _load_window(state: StreetPartition, key: str, spot: Spot, window: list[tuple[str, Entry, int]]) -> None:
    """Give a loaded header the window entries it logged; delete the others (see the module doc)."""
    if spot.entries:  # stored whole before windows had entries of their own: move them out
        state.changes.put(key)
        for entry in spot.entries:
            state.changes.put(window_key(spot.hotspot_id, entry))
    kept = []
    for wkey, entry, logged in window:
        if _folded(spot, entry, logged):
            kept.append(entry)
        else:
            state.changes.delete(wkey)
    spot.entries = sorted({*spot.entries, *kept})


def _folded(spot: Spot, entry: Entry, logged: int) -> bool:
    """Whether a logged window entry belongs to its logged header (see the module doc)."""
    if spot.changed is None:
        return True  # a header written before it kept offsets
    return spot.born <= logged <= spot.changed and (spot.horizon is None or entry[0] > spot.horizon)


def _stored(entries: Mapping[str, Any], key: str) -> Any:
    """A changed key's value as logged: a window entry's is its header's last change."""
    if key.startswith(WINDOW):
        changed = entries[f"s/{window_hotspot(key)}"].changed
        return 0 if changed is None else changed  # 0: a header from before offsets were kept, see _folded
    return entries[key]


_TICK = timedelta(milliseconds=1)  # pop_before is strict: up to and including a time is before it plus 1 ms


def sighting(event: Event, district: District) -> Sighting | None:
    """A non-police alarm located in a street, with a place; None for everything else."""
    f = event.fields
    if event.type != "AlarmTriaged" or f["disposition"] != "NON_POLICE" or not f["street_code"]:
        return None
    key = f.get("place_key")
    if not key:
        return None
    category = district.category(f["category"])
    return Sighting(
        event.occurred_at,
        f["case_id"],
        key,
        f["place"],
        family(f["category"]),
        f["street_code"],
        f["grid_code"],
        None if category is None else category.team.value,
    )
