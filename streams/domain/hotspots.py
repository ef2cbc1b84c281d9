"""Hotspots: places where one family of calls keeps coming back. Pure.

A place is the gazetteer place when the alarm resolved to one, else its ~150 m geohash cell,
else its normalised address within the grid. For each (place, family) a spot counts alarms in
the rolling event-time window (t − window, t]. Crossing the threshold starts an episode
(HotspotDetected, once); while hot, every new alarm reports the grown count (HotspotUpdated);
when alarms leaving the window take the count under the threshold, the episode ends
(HotspotCooled) and the spot is re-armed.

The engine feeds sightings and expiries in event-time order, so the episode sequence is a
function of the alarms' times, not of their arrival order.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.event import Event, from_millis, to_millis
from streams.domain.routing import WORKER_SOURCE, derived_id

SAMPLE = 5


def family(category: str) -> str:
    return category.split(".", 1)[0]


@dataclass(frozen=True)
class HotspotRule:
    window: timedelta = timedelta(days=30)
    threshold: int = 10


@dataclass(frozen=True)
class HotspotPolicy:
    """The default rule and per-family overrides (``deploy/district/hotspots.json``)."""

    default: HotspotRule = HotspotRule()
    by_family: Mapping[str, HotspotRule] = field(default_factory=dict)

    def rule(self, fam: str) -> HotspotRule:
        return self.by_family.get(fam, self.default)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> HotspotPolicy:
        def parse(d: Mapping[str, Any], where: str) -> HotspotRule:
            days, threshold = d.get("window_days", 30), d.get("threshold", 10)
            if not isinstance(days, int) or not isinstance(threshold, int) or days < 1 or threshold < 1:
                raise ValueError(f"{where}: window_days and threshold must be positive integers")
            return HotspotRule(timedelta(days=days), threshold)

        default = parse(doc.get("default", {}), "default")
        families = {name: parse(d, f"families.{name}") for name, d in doc.get("families", {}).items()}
        return cls(default, families)


@dataclass(frozen=True)
class Sighting:
    """One non-police alarm as the hotspot fold needs it."""

    at: datetime
    case_id: str
    place_key: str
    place: str | None
    family: str
    street: str
    grid: str | None
    team: str | None

    @property
    def hotspot_id(self) -> str:
        return f"{self.place_key}|{self.family}"

    @property
    def order(self) -> tuple[datetime, str]:
        return self.at, self.case_id


Entry = tuple[datetime, str]  # an alarm in a spot's window: (event time, case id)


@dataclass
class Spot:
    """One (place, family): the alarms in the window, oldest first, and the episode if hot.

    The window is a sorted list changed in place: an alarm costs O(log n) to find and, in event-time order,
    an append; leaving the window drops a prefix. Nothing is copied per alarm."""

    hotspot_id: str
    place_key: str
    place: str | None
    family: str
    street: str
    grid: str | None
    team: str | None = None
    entries: list[Entry] = field(default_factory=list)
    episode_start: datetime | None = None
    # how the spot is logged (kept by the street engine, see there): the log offsets of the records that
    # created it and last changed it (None in state written before 2026-12-01), and the newest alarm that left
    # its window
    born: int = 0
    changed: int | None = None
    horizon: datetime | None = None

    @property
    def hot(self) -> bool:
        return self.episode_start is not None

    @property
    def header(self) -> tuple[str | None, str | None, str | None, datetime | None]:
        """What a spot holds besides its window (stored apart from the window's entries)."""
        return self.place, self.grid, self.team, self.episode_start

    def has(self, entry: Entry) -> bool:
        i = bisect.bisect_left(self.entries, entry)
        return i < len(self.entries) and self.entries[i] == entry

    def upto(self, at: datetime) -> int:
        """How many alarms of the window are at or before ``at``."""
        return bisect.bisect_right(self.entries, (at, _LAST))

    def next_expiry(self, rule: HotspotRule) -> datetime | None:
        """When the oldest alarm leaves the window: a hot spot may cool then, a cold one may be forgotten."""
        return self.entries[0][0] + rule.window if self.entries else None


@dataclass
class Delta:
    """The window entries a fold added and removed: what the spot's changelog records."""

    added: list[Entry] = field(default_factory=list)
    removed: list[Entry] = field(default_factory=list)


_LAST = "\uffff"  # sorts after every case id: (t, _LAST) bounds the entries at t


def new_spot(s: Sighting) -> Spot:
    return Spot(s.hotspot_id, s.place_key, s.place, s.family, s.street, s.grid, s.team)


def expire(spot: Spot, until: datetime, rule: HotspotRule, delta: Delta | None = None) -> tuple[Spot, list[Event]]:
    """Let alarms leave the window up to ``until``, one expiry time at a time; cool when under the threshold."""
    out: list[Event] = []
    while spot.entries and spot.entries[0][0] + rule.window <= until:
        at = spot.entries[0][0] + rule.window
        gone = spot.upto(at - rule.window)  # the alarms whose window ends at ``at``
        if delta is not None:
            delta.removed += spot.entries[:gone]
        del spot.entries[:gone]
        if spot.hot and len(spot.entries) < rule.threshold:
            out.append(_event("HotspotCooled", spot, at, rule, "cooled"))
            spot.episode_start = None
    return spot, out


def observe(spot: Spot, s: Sighting, rule: HotspotRule, delta: Delta | None = None) -> tuple[Spot, list[Event]]:
    """One alarm at the place, at its own event time (expiries before it come first)."""
    spot, out = expire(spot, s.at, rule, delta)
    entry = (s.at, s.case_id)
    if spot.has(entry):
        return spot, out  # the same case again: a re-delivery
    bisect.insort(spot.entries, entry)  # in event-time order this is an append; a late alarm goes in place
    if delta is not None:
        delta.added.append(entry)
    spot.team, spot.grid, spot.place = s.team, s.grid, s.place
    count = spot.upto(s.at)  # the alarms in (t - window, t]
    if spot.hot:
        out.append(_event("HotspotUpdated", spot, s.at, rule, s.case_id, count))
    elif count >= rule.threshold:
        spot.episode_start = s.at
        out.append(_event("HotspotDetected", spot, s.at, rule, "detected", count))
    return spot, out


def _event(kind: str, spot: Spot, at: datetime, rule: HotspotRule, change: str, count: int | None = None) -> Event:
    assert spot.episode_start is not None
    episode = derived_id(spot.hotspot_id, f"episode/{spot.episode_start.isoformat()}")
    n = spot.upto(at)
    return Event(
        kind,
        {
            "event_id": derived_id(episode, f"{kind}/{change}"),
            "occurred_at": at,
            "source": WORKER_SOURCE,
            "hotspot_id": spot.hotspot_id,
            "episode_id": episode,
            "place_key": spot.place_key,
            "place": spot.place,
            "family": spot.family,
            "street_code": spot.street,
            "grid_code": spot.grid,
            "team": spot.team,
            "window_days": rule.window.days,
            "threshold": rule.threshold,
            "count": n if count is None else count,
            "episode_started_at": spot.episode_start,
            "sample_case_ids": [case for _, case in spot.entries[max(0, n - SAMPLE) : n]],
        },
    )


def spot_to_dict(spot: Spot) -> dict[str, Any]:
    return {
        "hotspot_id": spot.hotspot_id,
        "place_key": spot.place_key,
        "place": spot.place,
        "family": spot.family,
        "street": spot.street,
        "grid": spot.grid,
        "team": spot.team,
        "episode_start": None if spot.episode_start is None else to_millis(spot.episode_start),
        "born": spot.born,
        "changed": spot.changed,
        "horizon": None if spot.horizon is None else to_millis(spot.horizon),
    }


def spot_from_dict(d: Mapping[str, Any]) -> Spot:
    return Spot(
        d["hotspot_id"],
        d["place_key"],
        d["place"],
        d["family"],
        d["street"],
        d["grid"],
        d["team"],
        [(from_millis(ms), case) for ms, case in d.get("entries", ())],  # state written before 2026-11-30
        None if d["episode_start"] is None else from_millis(d["episode_start"]),
        d.get("born", 0),
        d.get("changed"),
        None if d.get("horizon") is None else from_millis(d["horizon"]),
    )
