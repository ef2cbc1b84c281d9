"""One alarm and the plan of its case: who calls, about what, where, and how the field answers, step by step.

Field events are planned when the alarm arrives (their times and ids drawn then) and rendered to the
contract's JSON form only when the generator reaches their time, so pending cases stay small.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any, TypeVar

from streams.simulator import profiles as p
from streams.simulator.config import SimConfig
from streams.simulator.stamps import iso_local, local_day, local_slot, local_yyyymmdd, uuid4_text
from streams.simulator.world import Kind, Spot, World

T = TypeVar("T")
Step = tuple[int, str, int, tuple[Any, ...]]  # (UTC ms, record name, event id bits, what the record says)
ROADS = ("河庄路", "围垦街", "建设一路", "新城路", "青西路", "垦辉路")
HOTSPOT_BLOCKS = (3, 5, 8)  # the blocks being renovated


@dataclass(slots=True)
class Case:
    seq: int
    case_id: str
    worker: str
    steps: list[Step]


def pick(rng: random.Random, choices: p.Weighted[T]) -> T:
    return choices.items[bisect.bisect(choices.cumulative, rng.random() * choices.cumulative[-1])]


def delay_ms(rng: random.Random, delay: p.Lognormal) -> int:
    return int(draw(rng, delay) * 1000)


def draw(rng: random.Random, shape: p.Lognormal) -> float:
    return rng.lognormvariate(math.log(shape.median), shape.sigma)


class CaseMaker:
    """Opens cases in time order; alarm ids are ``<prefix>-<local yyyymmdd>-<run tag>-<n>``, n per local day."""

    def __init__(self, world: World, config: SimConfig, start_ms: int) -> None:
        self.world, self.config = world, config
        self.rng = config.rng("cases")
        self.tag = hashlib.sha256(f"{config.seed}/{start_ms}/{config.street_code}".encode()).hexdigest()[:4]
        self.day, self.number, self.seq = -1, 0, 0

    def open(self, at_ms: int, hotspot: bool) -> tuple[dict[str, Any], Case | None]:
        """The AlarmReceived in JSON form, and the case plan (None for a police matter)."""
        rng, world = self.rng, self.world
        if hotspot and world.hotspot is not None and world.renovation is not None:
            kind, spot = world.renovation, world.hotspot
        else:
            hotspot, kind = False, self._kind()
            spot = self._spot(kind)
        lat, lon = spot.points[int(rng.random() * len(spot.points))]
        alarm_id = self._alarm_id(at_ms)
        alarm = self._alarm(at_ms, alarm_id, kind, spot, (lat, lon), hotspot)
        if kind.police:
            return alarm, None
        self.seq += 1
        members = world.duty[(spot.grid_code, kind.team)][local_slot(at_ms)]
        worker = members[int(rng.random() * len(members))]
        return alarm, Case(self.seq, alarm_id, worker, self._plan(at_ms, kind, (lat, lon)))

    def _kind(self) -> Kind:
        police = self.rng.random() < self.config.police_share
        return pick(self.rng, self.world.police if police else self.world.non_police)

    def _spot(self, kind: Kind) -> Spot:
        if kind.places is not None and self.rng.random() < p.PLACE_SHARE:
            return pick(self.rng, kind.places)
        return pick(self.rng, self.world.grids)

    def _alarm_id(self, at_ms: int) -> str:
        day = local_day(at_ms)
        if day != self.day:
            self.day, self.number = day, 0
        self.number += 1
        return f"{self.world.prefix}-{local_yyyymmdd(at_ms)}-{self.tag}-{self.number:05d}"

    def _alarm(
        self, at_ms: int, alarm_id: str, kind: Kind, spot: Spot, point: tuple[float, float], hotspot: bool
    ) -> dict[str, Any]:
        rng = self.rng
        channel = "CALL_110" if kind.police or hotspot else pick(rng, p.CHANNELS)
        address = self._address(spot, hotspot)
        located = channel in ("GRID_PATROL", "SELF_REPORT") or (
            channel == "CALL_110" and rng.random() < p.CALL_WITH_POINT
        )
        return {
            "type": "AlarmReceived",
            "event_id": uuid4_text(rng.getrandbits(128)),
            "occurred_at": iso_local(at_ms),
            "source": p.SOURCES[channel],
            "alarm_id": alarm_id,
            "channel": channel,
            "category": kind.code,
            "police_matter": "POLICE" if kind.police else ("NON_POLICE" if channel == "CALL_110" else "UNKNOWN"),
            "priority": pick(rng, p.POLICE_PRIORITY if kind.police else p.NON_POLICE_PRIORITY),
            "location": {
                "address": address,
                "lat": point[0] if located else None,
                "lon": point[1] if located else None,
                "street_code": self.world.street.code,
                "grid_code": spot.grid_code if channel == "GRID_PATROL" else None,
            },
            "caller_phone": None if channel == "GRID_PATROL" else self._caller(hotspot),
            "caller_language": None if channel == "GRID_PATROL" else pick(rng, p.LANGUAGES),
            "description": f"{kind.name}：{address}",
        }

    def _caller(self, hotspot: bool) -> str:
        """Most callers are occasional; regulars, and the hotspot's neighbours, call again and again."""
        u, world = self.rng.random(), self.world
        if hotspot and u < p.HOTSPOT_REPEAT_SHARE:
            pool = world.hotspot_callers
        else:
            pool = world.regulars if u < p.REGULAR_SHARE else world.callers
        return pool[int(self.rng.random() * len(pool))]

    def _address(self, spot: Spot, hotspot: bool) -> str:
        r, name = self.rng.randint, spot.label
        if spot.kind == "COMPOUND":
            block = HOTSPOT_BLOCKS[r(0, 2)] if hotspot else r(1, 30)
            return f"{name} {block}幢{r(1, 4)}单元{r(1, 26)}{r(1, 4):02d}室"
        if spot.kind == "MARKET":
            return f"{name} {r(1, 120)}号摊位"
        if spot.kind == "VILLAGE":
            return f"{name}{r(1, 12)}组{r(1, 80)}号"
        if spot.kind in ("PARK", "INDUSTRIAL"):
            return f"{name} {r(1, 40)}号厂房"
        if spot.kind == "SCHOOL":
            return f"{name}门口"
        if spot.kind == "TOWN":
            return f"{self.world.street.name}{ROADS[r(0, len(ROADS) - 1)]}{r(1, 300)}号"
        return name

    def _plan(self, at_ms: int, kind: Kind, point: tuple[float, float]) -> list[Step]:
        """Accept, contact, arrive (or settle by phone), conclude, close, and rarely a corrected conclusion."""
        rng, config = self.rng, self.config
        dispatch = at_ms + int(rng.uniform(*p.DISPATCH_S) * 1000)
        steps: list[Step] = []
        if rng.random() < config.no_accept:
            if rng.random() < p.ABANDON_SHARE:
                return [self._step(dispatch + delay_ms(rng, p.ABANDONED), "CaseClosed", p.REPORTED_TO)]
            t = dispatch + 60_000 + delay_ms(rng, p.LATE_PICKUP)  # picked up after the escalation, never signed
        else:
            t = dispatch + delay_ms(rng, p.ACCEPT)
            steps.append(self._step(t, "InstructionAccepted", ()))
        t += delay_ms(rng, p.CONTACT)
        if rng.random() < config.phone_only:
            steps.append(self._step(t, "PartyContacted", ("PHONE",)))
            t += delay_ms(rng, p.PHONE_SETTLE)
        else:
            t = self._on_site(steps, t, point)
        outcome = "RESOLVED" if rng.random() < config.success else pick(rng, p.OTHER_OUTCOMES)
        steps.append(self._step(t, "MediationConcluded", self._conclusion(kind, outcome)))
        t += delay_ms(rng, p.CLOSE)
        steps.append(self._step(t, "CaseClosed", p.REPORTED_TO))
        if rng.random() < config.correction:
            other = pick(rng, p.OTHER_OUTCOMES) if outcome == "RESOLVED" else "RESOLVED"
            fix = (other, None, f"更正：{p.SUMMARIES[other]}")
            steps.append(self._step(t + delay_ms(rng, p.CORRECTION), "MediationConcluded", fix))
        return sorted(steps, key=lambda s: s[0])

    def _on_site(self, steps: list[Step], t: int, point: tuple[float, float]) -> int:
        """Contact then arrival; contact in person means the worker was already close (on patrol)."""
        rng, j = self.rng, 0.0002
        method = pick(rng, p.CONTACT_ON_SITE)
        arrive = t if method == "IN_PERSON" else t + delay_ms(rng, p.ARRIVE)
        contact = arrive + rng.randint(5_000, 30_000) if method == "IN_PERSON" else t
        steps.append(self._step(contact, "PartyContacted", (method,)))
        here = (round(point[0] + rng.uniform(-j, j), 6), round(point[1] + rng.uniform(-j, j), 6))
        steps.append(self._step(arrive, "ResponderArrived", here))
        return max(arrive, contact) + delay_ms(rng, p.ON_SITE)

    def _conclusion(self, kind: Kind, outcome: str) -> tuple[str, str | None, str]:
        rng = self.rng
        if outcome == "RESOLVED" and kind.code in p.COMPENSATION_CATEGORIES and rng.random() < p.COMPENSATION_SHARE:
            amount = f"{min(draw(rng, p.COMPENSATION_YUAN), 99_999.0):.2f}"
            return outcome, amount, f"{p.SUMMARIES[outcome]}，赔偿{amount}元"
        return outcome, None, p.SUMMARIES[outcome]

    def _step(self, at_ms: int, record: str, says: tuple[Any, ...]) -> Step:
        return at_ms, record, self.rng.getrandbits(128), says


def render(case: Case, step: Step) -> dict[str, Any]:
    """A planned step as the contract's JSON form."""
    at_ms, record, bits, says = step
    event: dict[str, Any] = {
        "type": record,
        "event_id": uuid4_text(bits),
        "occurred_at": iso_local(at_ms),
        "source": "sipingtai" if record == "CaseClosed" else "gridapp",
        "case_id": case.case_id,
    }
    if record == "CaseClosed":
        event["reported_to"] = list(says)
        return event
    event["worker_id"] = case.worker
    if record == "PartyContacted":
        event["method"] = says[0]
    elif record == "ResponderArrived":
        event["lat"], event["lon"] = says
    elif record == "MediationConcluded":
        event["outcome"], event["compensation"], event["summary"] = says
    return event
