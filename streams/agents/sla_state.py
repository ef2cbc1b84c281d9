"""SLA case state to and from the JSON that Faust tables store (times as epoch milliseconds)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from schemas.codec import Codec
from schemas.event import EPOCH, from_millis, to_millis
from streams.domain.sla import Assignment, Case, Held


def _ms(t: datetime | None) -> int | None:
    return None if t is None else to_millis(t)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else from_millis(ms)


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def case_to_dict(case: Case, codec: Codec) -> dict[str, Any]:
    a = case.assignment
    return {
        "case_id": case.case_id,
        "partition": case.partition,
        "tracked": case.tracked,
        "deadlines": None if case.deadlines is None else [_ms(d) for d in case.deadlines],
        "assignment": None
        if a is None
        else {
            "street": a.street,
            "grid": a.grid,
            "team": a.team,
            "level": a.level,
            "assignee": a.assignee,
            "tried": list(a.tried),
            "escalate_at": _ms(a.escalate_at),
            "step": a.step,
        },
        "met": [_ms(m) for m in case.met],
        "cancelled_at": _ms(case.cancelled_at),
        "decided": list(case.decided),
        "last_at": _ms(case.last_at),
        "seen": sorted(case.seen),
        "category": case.category,
        "dispatched_at": _ms(case.dispatched_at),
        "counted": None if case.counted is None else [_ms(case.counted[0]), case.counted[1]],
        "sla_rule": case.sla_rule,
        "held": [
            {
                "event": codec.to_json(h.event),
                "origin": list(h.origin),
                "key": _b64(h.key),
                "value": _b64(h.value),
                "appended_at": _ms(h.appended_at),
            }
            for h in case.held
        ],
    }


def case_from_dict(d: dict[str, Any], codec: Codec) -> Case:
    a = d["assignment"]
    assignment = (
        None
        if a is None
        else Assignment(
            a["street"],
            a["grid"],
            a["team"],
            a["level"],
            a["assignee"],
            tuple(a["tried"]),
            _dt(a["escalate_at"]),
            a["step"],
        )
    )
    return Case(
        case_id=d["case_id"],
        partition=d["partition"],
        tracked=d["tracked"],
        deadlines=None if d["deadlines"] is None else tuple(_dt(x) for x in d["deadlines"]),  # type: ignore[misc]
        assignment=assignment,
        met=tuple(_dt(m) for m in d["met"]),
        cancelled_at=_dt(d["cancelled_at"]),
        decided=tuple(d["decided"]),
        last_at=_dt(d["last_at"]),
        seen=frozenset(d["seen"]),
        held=tuple(
            Held(
                codec.from_json(h["event"]),
                (h["origin"][0], h["origin"][1], h["origin"][2]),
                _unb64(h["key"]),
                _unb64(h["value"]) or b"",
                _dt(h["appended_at"]) or EPOCH,
            )
            for h in d["held"]
        ),
        category=d.get("category"),
        dispatched_at=_dt(d.get("dispatched_at")),
        counted=None if d.get("counted") is None else (from_millis(d["counted"][0]), d["counted"][1]),
        sla_rule=d.get("sla_rule"),
    )
