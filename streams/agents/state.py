"""The engines' state to and from the bytes their changelogs carry: compact JSON, times as epoch milliseconds.

Every entry is stored under ``<partition>/<engine key>``, so a partition's state is found by its prefix.
A held field event keeps only its original bytes and coordinates; it is decoded again when loaded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.codec import Codec
from schemas.event import from_millis, to_millis
from streams.domain.case_engine import CaseMeta
from streams.domain.clock import PartitionClock
from streams.domain.engine import META
from streams.domain.hotspots import Sighting, spot_from_dict, spot_to_dict
from streams.domain.outcome_engine import CASE, HEAD, OutcomeMeta, Stored
from streams.domain.outcomes import contribution_from_list, contribution_to_list, outcome_from_dict
from streams.domain.sla import Assignment, Case, Held
from streams.domain.street_engine import WINDOW, Holder, StreetMeta
from streams.domain.triage_engine import Seen, TriageMeta


def _ms(t: datetime | None) -> int | None:
    return None if t is None else to_millis(t)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else from_millis(ms)


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _clock(c: PartitionClock) -> list[int | None]:
    return [_ms(c.event_time), _ms(c.last_append), _ms(c.watermark)]


def _unclock(v: list[int | None]) -> PartitionClock:
    return PartitionClock(_dt(v[0]), _dt(v[1]), _dt(v[2]))


def _progress(known: dict[int, datetime]) -> dict[str, int]:
    return {str(k): to_millis(v) for k, v in known.items()}


def _unprogress(d: dict[str, int]) -> dict[int, datetime]:
    return {int(k): from_millis(v) for k, v in d.items()}


# ---- cases ---------------------------------------------------------------------------------------------------


def encode_case(case: Case) -> list[Any]:
    a = case.assignment
    assignment = (
        None
        if a is None
        else [a.street, a.grid, a.team, a.level, a.assignee, list(a.tried), _ms(a.escalate_at), a.step]
    )
    return [
        case.tracked,
        None if case.deadlines is None else [_ms(d) for d in case.deadlines],
        assignment,
        [_ms(m) for m in case.met],
        _ms(case.cancelled_at),
        list(case.decided),
        _ms(case.last_at),
        sorted(case.seen),
        [[*h.origin, _b64(h.key), _b64(h.value), to_millis(h.appended_at)] for h in case.held],
        case.category,
        _ms(case.dispatched_at),
        None if case.counted is None else [_ms(case.counted[0]), case.counted[1]],
        case.sla_rule,
        case.released,
        list(case.alerted),
    ]


def decode_case(case_id: str, v: list[Any], codec: Codec) -> Case:
    a = v[2]
    assignment = None if a is None else Assignment(a[0], a[1], a[2], a[3], a[4], tuple(a[5]), _dt(a[6]), a[7])
    held = []
    for topic, partition, offset, key, value, appended in v[8]:
        raw = _unb64(value) or b""
        held.append(Held(codec.decode(raw), (topic, partition, offset), _unb64(key), raw, from_millis(appended)))
    return Case(
        case_id=case_id,
        tracked=v[0],
        deadlines=None if v[1] is None else tuple(from_millis(d) for d in v[1]),
        assignment=assignment,
        met=tuple(_dt(m) for m in v[3]),
        cancelled_at=_dt(v[4]),
        decided=tuple(v[5]),
        last_at=_dt(v[6]),
        seen=frozenset(v[7]),
        held=tuple(held),
        category=v[9],
        dispatched_at=_dt(v[10]),
        counted=None if v[11] is None else (from_millis(v[11][0]), v[11][1]),
        sla_rule=v[12],
        released=v[13],
        alerted=tuple(v[14]) if len(v) > 14 else (0, 0, 0),  # logged before the warnings: none decided yet
    )


def encode_case_meta(m: CaseMeta) -> dict[str, Any]:
    return {
        "clock": _clock(m.clock),
        "dispatched": _progress(m.dispatched),
        "read": _progress(m.read),
        "announced": _ms(m.announced),
    }


def decode_case_meta(d: dict[str, Any]) -> CaseMeta:
    return CaseMeta(_unclock(d["clock"]), _unprogress(d["dispatched"]), _unprogress(d["read"]), _dt(d["announced"]))


def _pair(p: tuple[datetime, datetime | None] | None) -> list[int | None] | None:
    return None if p is None else [to_millis(p[0]), _ms(p[1])]


def _unpair(v: list[int | None] | None) -> tuple[datetime, datetime | None] | None:
    return None if v is None or v[0] is None else (from_millis(v[0]), _dt(v[1]))


# ---- streets -------------------------------------------------------------------------------------------------


def encode_street(key: str, value: Any) -> Any:
    if isinstance(value, Holder):
        return [value.assignee, _ms(value.released_at)]
    if isinstance(value, Sighting):
        return {**value.__dict__, "at": to_millis(value.at)}
    if key.startswith(WINDOW):
        return value  # a window entry: its key says it all
    return spot_to_dict(value)


def decode_street(key: str, v: Any) -> Any:
    kind = key[:2]
    if kind == "h/":
        return Holder(v[0], _dt(v[1]))
    if kind == "q/":
        return Sighting(**{**v, "at": from_millis(v["at"])})
    if kind == WINDOW:
        return v
    return spot_from_dict(v)


def encode_street_meta(m: StreetMeta) -> dict[str, Any]:
    return {"alarms": _progress(m.alarms), "alarms_read": _progress(m.alarms_read), "announced": _pair(m.announced)}


def decode_street_meta(d: dict[str, Any]) -> StreetMeta:
    return StreetMeta(_unprogress(d["alarms"]), _unprogress(d["alarms_read"]), _unpair(d["announced"]))


# ---- triage --------------------------------------------------------------------------------------------------


def encode_triage_meta(m: TriageMeta) -> dict[str, Any]:
    return {"clock": _clock(m.clock), "read_to": _ms(m.read_to), "announced": _pair(m.announced)}


def decode_triage_meta(d: dict[str, Any]) -> TriageMeta:
    return TriageMeta(_unclock(d["clock"]), _dt(d["read_to"]), _unpair(d["announced"]))


def encode_seen(s: Seen) -> list[Any]:
    return [s.event_id, to_millis(s.at)]


def decode_seen(v: list[Any]) -> Seen:
    return Seen(v[0], from_millis(v[1]))


# ---- outcomes ------------------------------------------------------------------------------------------------


def encode_outcome_meta(m: OutcomeMeta) -> dict[str, Any]:
    return {"cases": _progress(m.cases)}


def decode_outcome_meta(d: dict[str, Any]) -> OutcomeMeta:
    return OutcomeMeta(_unprogress(d["cases"]))


def encode_outcome(value: Any) -> Any:
    if isinstance(value, Stored):
        return contribution_to_list(value.contribution, value.version)
    return value  # an aggregate's key fields


def decode_outcome(key: str, v: Any) -> Any:
    if key.startswith(CASE):
        contribution, version = contribution_from_list(v)
        return Stored(contribution, version or 0)
    if key.startswith(HEAD):
        return v
    return outcome_from_dict(v)  # an aggregate stored whole, before cases were stored apart


# ---- a partition's entries -----------------------------------------------------------------------------------

Encode = Callable[[str, Any], Any]
Decode = Callable[[str, Any], Any]


def entries_of(partition: int, items: Any) -> dict[str, bytes]:
    """The stored entries of one partition (key without its prefix → raw value), from a store's items."""
    prefix = f"{partition}/".encode()
    return {k[len(prefix) :].decode(): v for k, v in items if k.startswith(prefix) and v is not None}


def store_key(partition: int, key: str) -> bytes:
    return f"{partition}/{key}".encode()


def split_meta(entries: dict[str, bytes]) -> tuple[Any | None, dict[str, Any]]:
    """The partition's META entry (parsed) and the rest (parsed), by key."""
    meta = entries.pop(META, None)
    return (None if meta is None else json.loads(meta)), {k: json.loads(v) for k, v in entries.items()}
