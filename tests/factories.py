"""Valid events in the contract's JSON form, generated deterministically for tests."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

TZ = timezone(timedelta(hours=8))
CATEGORIES = ["noise.renovation", "dispute.market", "dispute.neighbour", "vendor.unlicensed", "crime.theft"]


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ts(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def alarm(rng: random.Random, alarm_id: str, at: datetime, phone: str | None = None) -> dict[str, Any]:
    return {
        "type": "AlarmReceived",
        "event_id": _id(rng),
        "occurred_at": _ts(at),
        "source": "cad110",
        "alarm_id": alarm_id,
        "channel": rng.choice(["CALL_110", "HOTLINE_12345", "GRID_PATROL", "SELF_REPORT"]),
        "category": rng.choice(CATEGORIES),
        "police_matter": rng.choice(["POLICE", "NON_POLICE", "UNKNOWN"]),
        "priority": rng.randint(1, 4),
        "location": {
            "address": f"河庄街道 {rng.randint(1, 300)}号",
            "lat": 30.29,
            "lon": 120.55,
            "street_code": "330114005",
            "grid_code": None,
        },
        "caller_phone": phone if phone is not None else f"13{rng.randint(100_000_000, 999_999_999)}",
        "description": "测试警情",
    }


def case_events(rng: random.Random, case_id: str, at: datetime) -> list[dict[str, Any]]:
    worker = f"GW-{rng.randint(1, 32):02d}"
    t = at + timedelta(seconds=rng.randint(10, 90))
    base = {"source": "gridapp", "case_id": case_id}
    out = [{"type": "InstructionAccepted", "event_id": _id(rng), "occurred_at": _ts(t), **base, "worker_id": worker}]
    t += timedelta(seconds=rng.randint(30, 200))
    out.append(
        {
            "type": "PartyContacted",
            "event_id": _id(rng),
            "occurred_at": _ts(t),
            **base,
            "worker_id": worker,
            "method": "PHONE",
        }
    )
    t += timedelta(seconds=rng.randint(60, 500))
    out.append(
        {
            "type": "ResponderArrived",
            "event_id": _id(rng),
            "occurred_at": _ts(t),
            **base,
            "worker_id": worker,
            "lat": None,
            "lon": None,
        }
    )
    t += timedelta(minutes=rng.randint(5, 60))
    out.append(
        {
            "type": "MediationConcluded",
            "event_id": _id(rng),
            "occurred_at": _ts(t),
            **base,
            "worker_id": worker,
            "outcome": "RESOLVED",
            "compensation": "1200.50",
            "summary": "已调解",
        }
    )
    t += timedelta(minutes=3)
    out.append(
        {"type": "CaseClosed", "event_id": _id(rng), "occurred_at": _ts(t), **base, "reported_to": ["sipingtai"]}
    )
    return out


def stream(n_cases: int, seed: int = 1, start: datetime | None = None) -> list[dict[str, Any]]:
    """``n_cases`` alarms, each followed by its five lifecycle events: 6 × n_cases events."""
    rng = random.Random(seed)
    at = start or datetime(2026, 5, 12, 8, 0, tzinfo=TZ)
    out: list[dict[str, Any]] = []
    for i in range(n_cases):
        at += timedelta(seconds=rng.randint(5, 120))
        case_id = f"HZ-{seed}-{i:06d}"
        out.append(alarm(rng, case_id, at))
        out.extend(case_events(rng, case_id, at))
    return out


PLACES = ["云上澜苑", "河庄农贸市场", "江东新城", "新围村", "河庄工业园"]
OUTCOME_WEIGHTS = {"RESOLVED": 90, "REFERRED": 3, "ESCALATED_TO_POLICE": 2, "UNRESOLVED": 2, "NO_ACTION_NEEDED": 3}


def month(n_cases: int, seed: int = 7, start: datetime | None = None, days: int = 30) -> list[dict[str, Any]]:
    """A month of non-police calls, concentrated on a few places (so hotspots form), with mixed outcomes,
    compensation on disputes, and some cases concluded twice (a correction, sometimes the next day)."""
    rng = random.Random(seed)
    at0 = start or datetime(2026, 5, 1, 8, 0, tzinfo=TZ)
    weights = [1 / (i + 1) ** 1.2 for i in range(len(PLACES))]
    out: list[dict[str, Any]] = []
    for i in range(n_cases):
        at = at0 + timedelta(seconds=rng.uniform(0, days * 86400))
        case_id = f"HZ-M{seed}-{i:05d}"
        a = alarm(rng, case_id, at)
        a["police_matter"], a["priority"] = "NON_POLICE", rng.randint(2, 4)
        a["category"] = rng.choice(["noise.renovation", "noise.renovation", "dispute.market", "dispute.neighbour"])
        if rng.random() < 0.8:
            a["location"] = {**a["location"], "address": f"{rng.choices(PLACES, weights)[0]} {rng.randint(1, 9)}幢"}
            a["location"]["lat"] = a["location"]["lon"] = None
        else:  # a point in town: its geohash cell is the place
            a["location"] = {**a["location"], "lat": 30.2802 + rng.uniform(-0.002, 0.002), "lon": 120.5455}
        events = case_events(rng, case_id, at)
        conclusion = events[3]
        conclusion["outcome"] = rng.choices(list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values()))[0]
        conclusion["compensation"] = (
            f"{rng.randint(0, 5000)}.{rng.randint(0, 99):02d}" if "dispute" in a["category"] else None
        )
        if rng.random() < 0.05:
            later = datetime.fromisoformat(conclusion["occurred_at"]) + timedelta(hours=rng.choice([1, 20]))
            correction = {**conclusion, "event_id": _id(rng), "occurred_at": _ts(later)}
            correction["outcome"] = "UNRESOLVED" if conclusion["outcome"] == "RESOLVED" else "RESOLVED"
            events.append(correction)
        out.append(a)
        out.extend(events)
    out.sort(key=lambda e: e["occurred_at"])
    return out
