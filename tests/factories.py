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
