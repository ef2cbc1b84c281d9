"""Triage, location and dispatch of one alarm. Pure: an alarm and the district in, decisions and events out.

Every decision names the rule that made it, so the command room can see why a call went where it went.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pygeohash

from schemas.event import Event
from streams.domain.district import Disposition, District, Member, SlaTargets, normalise

DERIVED_NAMESPACE = uuid.UUID("8d2b7f0e-4c1a-4e7b-9a0c-3f5e6d7c8b9a")
_NAMESPACE_BYTES = DERIVED_NAMESPACE.bytes
WORKER_SOURCE = "alarmflow.worker"
GEOHASH_PRECISION = 7  # a cell of about 153 m × 120 m at this latitude


def derived_id(source_event_id: str, kind: str) -> str:
    """A derived event's id is a function of what caused it, so a replay publishes the same id: RFC 4122's
    name-based UUID (version 5) of ``<source_event_id>/<kind>`` in ``DERIVED_NAMESPACE``, ``uuid.uuid5``'s value
    computed without building a UUID object (a tenth of the pure engines' time went there)."""
    name = _NAMESPACE_BYTES + f"{source_event_id}/{kind}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def derived_dead_letter(
    origin: tuple[str, int, int], key: bytes | None, payload: bytes, error_class: str, reason: str, at: datetime
) -> Event:
    """A record an engine refuses, as DeadLettered: its original bytes and coordinates, an id derived from them."""
    topic, partition, offset = origin
    where = f"{topic}/{partition}/{offset}"
    return Event(
        "DeadLettered",
        {
            "event_id": derived_id(where, error_class),
            "occurred_at": at,
            "source": WORKER_SOURCE,
            "origin": where,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "source_key": key,
            "error_class": error_class,
            "reason": reason,
            "payload": payload,
        },
    )


@dataclass(frozen=True)
class Alarm:
    """What routing reads from an AlarmReceived (the caller's number is already a token)."""

    event_id: str
    alarm_id: str
    occurred_at: datetime
    category: str
    police_matter: str
    priority: int
    address: str
    lat: float | None
    lon: float | None
    street_code: str | None
    grid_code: str | None
    caller_token: str | None

    @classmethod
    def from_fields(cls, f: Mapping[str, Any], caller_token: str | None) -> Alarm:
        loc = f["location"]
        return cls(
            f["event_id"],
            f["alarm_id"],
            f["occurred_at"],
            f["category"],
            f["police_matter"],
            f["priority"],
            loc["address"],
            loc["lat"],
            loc["lon"],
            loc["street_code"],
            loc["grid_code"],
            caller_token,
        )


@dataclass(frozen=True)
class Location:
    """Where the alarm is, and the rule that decided it; notes record what was tried and set aside."""

    street_code: str | None
    grid_code: str | None
    place: str | None
    rule: str
    notes: tuple[str, ...] = ()

    @property
    def resolved(self) -> bool:
        return self.street_code is not None


@dataclass(frozen=True)
class Triage:
    disposition: Disposition
    rule: str
    reason: str


def triage(alarm: Alarm, district: District) -> Triage:
    """First match wins; nothing is dropped: anything unclear goes to REVIEW, the command room's queue."""
    category = district.category(alarm.category)
    if alarm.police_matter == "POLICE":
        return Triage(Disposition.POLICE, "triage.110_police", "the 110 centre classified it as a police matter")
    if alarm.priority == 1:
        return Triage(Disposition.POLICE, "triage.priority_1", "priority 1 stays with the police")
    if category is None:
        return Triage(
            Disposition.REVIEW, "triage.unknown_category", f"category {alarm.category!r} is not in the taxonomy"
        )
    if alarm.police_matter == "NON_POLICE" and category.disposition == Disposition.POLICE:
        return Triage(
            Disposition.REVIEW, "triage.contradiction", f"110 says non-police but {alarm.category} is police work"
        )
    if category.disposition == Disposition.REVIEW:
        return Triage(Disposition.REVIEW, "triage.category_review", f"{alarm.category} needs a dispatcher's decision")
    return Triage(category.disposition, "triage.category", f"{alarm.category} defaults to {category.disposition}")


def locate(alarm: Alarm, district: District) -> Location:
    """grid_code, then the point, then the gazetteer, then the street's pool; otherwise unresolved."""
    notes: list[str] = []
    conflict = False
    if alarm.grid_code is not None:
        grid = district.grid(alarm.grid_code)
        if grid is None:
            notes.append(f"location.grid_unknown:{alarm.grid_code}")
        elif alarm.street_code is not None and alarm.street_code != grid.street_code:
            # Neither code can be trusted over the other; let the point or the address decide.
            notes.append(f"location.grid_street_conflict:{grid.code}/{alarm.street_code}")
            conflict = True
        else:
            return Location(grid.street_code, grid.code, _place(alarm, district), "location.grid_code", tuple(notes))
    if alarm.lat is not None and alarm.lon is not None:
        grid = district.grid_at(alarm.lon, alarm.lat)
        if grid is not None:
            return Location(grid.street_code, grid.code, _place(alarm, district), "location.point", tuple(notes))
        notes.append("location.point_outside")
    place = district.place_named(alarm.address)
    if place is not None:
        return Location(place.street_code, place.grid_code, place.name, "location.gazetteer", tuple(notes))
    if conflict:
        return Location(None, None, None, "location.conflict_unresolved", tuple(notes))
    if alarm.street_code is not None and district.street(alarm.street_code) is not None:
        return Location(alarm.street_code, None, None, "location.street_pool", tuple(notes))
    if alarm.street_code is not None:
        notes.append(f"location.street_unknown:{alarm.street_code}")
    return Location(None, None, None, "location.unresolved", tuple(notes))


def _place(alarm: Alarm, district: District) -> str | None:
    place = district.place_named(alarm.address)
    return place.name if place is not None else None


def decide(alarm: Alarm, district: District) -> tuple[Triage, Location]:
    """The triage, with a non-police alarm that cannot be located sent to REVIEW."""
    decision, location = triage(alarm, district), locate(alarm, district)
    if decision.disposition == Disposition.NON_POLICE and not location.resolved:
        decision = Triage(Disposition.REVIEW, location.rule, "non-police, but no street or grid could be found")
    return decision, location


def place_key(alarm: Alarm, location: Location) -> str | None:
    """Where the alarm counts for hotspots: the gazetteer place, else its geohash cell, else its address in the grid."""
    if location.place:
        return f"place:{location.place}"
    if alarm.lat is not None and alarm.lon is not None:
        return f"geo:{pygeohash.encode(alarm.lat, alarm.lon, precision=GEOHASH_PRECISION)}"
    text = normalise(alarm.address)
    return f"addr:{location.grid_code or ''}:{text}" if text else None


def triaged_event(alarm: Alarm, decision: Triage, location: Location) -> Event:
    return Event(
        "AlarmTriaged",
        {
            "event_id": derived_id(alarm.event_id, "AlarmTriaged"),
            "occurred_at": alarm.occurred_at,
            "source": WORKER_SOURCE,
            "case_id": alarm.alarm_id,
            "alarm_id": alarm.alarm_id,
            "category": alarm.category,
            "priority": alarm.priority,
            "disposition": decision.disposition.value,
            "rule": decision.rule,
            "reason": decision.reason,
            "street_code": location.street_code,
            "grid_code": location.grid_code,
            "place": location.place,
            "lat": alarm.lat,
            "lon": alarm.lon,
            "location_rule": location.rule,
            "location_notes": list(location.notes),
            "caller_token": alarm.caller_token,
            "place_key": place_key(alarm, location),
        },
    )


@dataclass(frozen=True)
class Assignment:
    team: str
    level: str
    assignee_id: str | None
    rule: str


def assign(
    district: District,
    team: str,
    street_code: str,
    grid_code: str | None,
    at: datetime,
    open_cases: Callable[[str], int],
) -> Assignment:
    """The on-duty member with the fewest open cases (ties: lowest member id), in the grid, else the pool."""
    if grid_code is not None:
        chosen = _least_loaded(district.on_duty(team, street_code, grid_code, at), open_cases)
        if chosen is not None:
            return Assignment(team, "GRID", chosen, "dispatch.grid_member")
    chosen = _least_loaded(district.on_duty(team, street_code, None, at), open_cases)
    if chosen is not None:
        return Assignment(team, "STREET_POOL", chosen, "dispatch.street_pool")
    return Assignment(team, "COMMAND_ROOM", None, "dispatch.command_room")


def _least_loaded(members: list[Member], open_cases: Callable[[str], int]) -> str | None:
    if not members:
        return None
    return min((open_cases(m.member_id), m.member_id) for m in members)[1]


def deadlines(at: datetime, targets: SlaTargets) -> dict[str, datetime]:
    return {
        "accept_by": at + timedelta(seconds=targets.accept_s),
        "contact_by": at + timedelta(seconds=targets.contact_s),
        "arrive_by": at + timedelta(seconds=targets.arrive_s),
    }


def dispatched_event(triaged: Mapping[str, Any], assignment: Assignment, district: District) -> Event:
    """The CaseDispatched for a NON_POLICE AlarmTriaged; its clocks start at the alarm's occurred_at."""
    at: datetime = triaged["occurred_at"]
    targets = district.sla.targets(triaged["category"], triaged["priority"])
    return Event(
        "CaseDispatched",
        {
            "event_id": derived_id(triaged["event_id"], "CaseDispatched"),
            "occurred_at": at,
            "source": WORKER_SOURCE,
            "case_id": triaged["case_id"],
            "alarm_id": triaged["alarm_id"],
            "category": triaged["category"],
            "priority": triaged["priority"],
            "street_code": triaged["street_code"],
            "grid_code": triaged["grid_code"],
            "team": assignment.team,
            "level": assignment.level,
            "assignee_id": assignment.assignee_id,
            **deadlines(at, targets),
            "rule": assignment.rule,
            "place": triaged["place"],
            "sla_rule": targets.rule,
        },
    )


def team_for(triaged: Mapping[str, Any], district: District) -> str:
    category = district.category(triaged["category"])
    if category is None:  # a NON_POLICE triage always has a known category
        raise ValueError(f"unknown category {triaged['category']!r}")
    return category.team.value
