"""The suite's input: a seeded simulated street, the records that settle it, poison, and skewed clocks."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import Codec
from schemas.event import to_millis
from streams.reference_files import load_district
from streams.simulator.config import SimConfig
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.generator import generate

CODEC = Codec()
LATENESS_MS = 5_000  # the workers' allowed lateness; the simulator's disorder stays within it
START = datetime(2026, 5, 1, 16, 0, tzinfo=UTC)  # midnight in Hezhuang


@dataclass(frozen=True)
class Workload:
    """What one run publishes, in order, and how much of it is meant to be rejected."""

    events: list[SimEvent]
    settle: list[SimEvent]

    @property
    def valid(self) -> list[SimEvent]:
        return [e for e in self.events if e.delivery is not Delivery.MALFORMED]

    @property
    def malformed(self) -> int:
        return sum(e.delivery is Delivery.MALFORMED for e in self.events)

    def event_ids(self) -> set[str]:
        return {str(e.value["event_id"]) for e in self.valid + self.settle if isinstance(e.value, dict)}


def street(seed: int, days: float, rate_per_day: float) -> Workload:
    config = SimConfig(
        seed=seed,
        start=START,
        days=days,
        drain_hours=3.0,
        rate_per_day=rate_per_day,
        hotspot_calls=25,
        disorder_s=LATENESS_MS / 1000,
        duplicates=0.01,
        malformed=0.002,
    )
    events = list(generate(config, load_district()))
    last = max(e.occurred_at for e in events)
    return Workload(events, settle(last + timedelta(days=1)))


def settle(at: datetime) -> list[SimEvent]:
    """Police alarms on enough keys to reach every partition: they move every clock past the run, so every
    decision about it is final, and add nothing else (police work has no SLA, dispatch or hotspot)."""
    rng = random.Random(f"settle/{at.isoformat()}")
    out = []
    ms = to_millis(at)
    for i in range(40):
        alarm_id = f"SETTLE-{ms}-{i:02d}"
        alarm = {
            "type": "AlarmReceived",
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "occurred_at": at.isoformat(timespec="milliseconds"),
            "source": "cad110",
            "alarm_id": alarm_id,
            "channel": "CALL_110",
            "category": "crime.theft",
            "police_matter": "POLICE",
            "priority": 2,
            "location": {
                "address": "河庄街道",
                "lat": None,
                "lon": None,
                "street_code": "330114005",
                "grid_code": None,
            },
            "description": "settle",
        }
        out.append(SimEvent(ms, ms, "alarms", alarm_id, "AlarmReceived", alarm))
    return out


def skewed(workload: Workload, delta: timedelta) -> Workload:
    """The field app's clock off by ``delta``: every field event's occurred_at moves, nothing else does."""
    out = []
    for e in workload.events:
        moved = e
        if e.topic == "case-events" and isinstance(e.value, dict) and e.delivery is not Delivery.MALFORMED:
            at = datetime.fromisoformat(str(e.value["occurred_at"])) + delta
            value = {**e.value, "occurred_at": at.isoformat(timespec="milliseconds")}
            moved = replace(e, value=value, occurred_ms=to_millis(at))
        out.append(moved)
    last = max(e.occurred_at for e in out)
    return Workload(out, settle(last + timedelta(days=1)))


@dataclass(frozen=True)
class Poison:
    """A message that must end in the dead letters (``expected`` is its error class), or be recognised as a
    repeat of an event already in (``expected`` None: the same event_id with other content)."""

    kind: str
    topic: str
    key: bytes | None
    value: bytes
    expected: str | None


def poison(workload: Workload) -> list[Poison]:
    """One of each kind of bad input, on every topic an agent or the projector reads from upstream."""
    alarm = next(e for e in workload.valid if e.topic == "alarms" and isinstance(e.value, dict))
    field = next(e for e in workload.valid if e.topic == "case-events" and isinstance(e.value, dict))
    assert isinstance(alarm.value, dict) and isinstance(field.value, dict)
    good = CODEC.encode(CODEC.from_json(alarm.value))
    key = alarm.value["alarm_id"].encode()

    def variant(base: dict[str, Any], **over: Any) -> bytes:
        return CODEC.encode(CODEC.from_json({**base, "event_id": str(uuid.uuid4()), **over}))

    old = (datetime(2026, 4, 1, tzinfo=UTC)).isoformat()
    new = (START + timedelta(hours=30)).isoformat()
    ghost = {**field.value, "case_id": "GHOST-NEW", "event_id": str(uuid.uuid4()), "occurred_at": new}
    ghost_old = {**field.value, "case_id": "GHOST-OLD"}
    other = {**alarm.value, "priority": 1}
    return [
        Poison("undecodable", "alarms", key, b'{"not": "avro"}', "Undecodable"),
        Poison("truncated", "alarms", key, good[: len(good) // 2], "Undecodable"),
        Poison("unknown fingerprint", "alarms", key, b"\xc3\x01" + b"\xab" * 8 + good[10:], "UnknownSchema"),
        Poison("1970", "alarms", key, variant(alarm.value, occurred_at="1970-01-02T00:00:00+00:00"), "InvalidTime"),
        Poison("2300", "alarms", key, variant(alarm.value, occurred_at="2300-01-01T00:00:00+00:00"), "InvalidTime"),
        Poison("wrong key", "alarms", b"not-the-alarm-id", variant(alarm.value), "KeyMismatch"),
        Poison("wrong topic", "case-events", key, variant(alarm.value), "WrongTopic"),
        Poison("oversized", "alarms", key, good + b"\x00" * 70_000, "TooLarge"),
        Poison("same id, other content", "alarms", key, CODEC.encode(CODEC.from_json(other)), None),
        Poison(
            "unknown case, old",
            "case-events",
            b"GHOST-OLD",
            variant(ghost_old, occurred_at=old),
            "Orphan",
        ),
        Poison("unknown case, new", "case-events", b"GHOST-NEW", CODEC.encode(CODEC.from_json(ghost)), "Orphan"),
        Poison("undecodable, internal", "routing", b"330114005", b"\x00garbage", "Undecodable"),
        Poison("undecodable, internal", "outcomes", b"x", b"\xc3\x01garbage", "Undecodable"),
    ]
