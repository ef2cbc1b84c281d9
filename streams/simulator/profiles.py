"""The default SHAPES of the simulated street: when calls come, what they are about, where, and how fast the
field answers. README.md says where each shape comes from; no number here claims to be Hezhuang's statistics
except those the seed report gives (see config.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")


def normalised(values: Sequence[float]) -> tuple[float, ...]:
    """Scaled to mean 1, so a profile reshapes a rate without changing its average."""
    mean = sum(values) / len(values)
    return tuple(v / mean for v in values)


@dataclass(frozen=True)
class Weighted(Generic[T]):
    """Items with cumulative weights, for ``bisect`` on ``random() * total``."""

    items: tuple[T, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[T, float]]) -> Weighted[T]:
        kept = [(item, w) for item, w in pairs if w > 0]
        if not kept:
            raise ValueError("nothing to choose from")
        return cls(tuple(i for i, _ in kept), tuple(accumulate(w for _, w in kept)))


@dataclass(frozen=True)
class Lognormal:
    """A right-skewed lognormal delay: half the draws fall below ``median``; ``sigma`` sets the tail."""

    median: float
    sigma: float


# Local hour of day, 00..23: a trough before dawn, a rise through the day and the peak in the evening.
HOUR_OF_DAY = normalised(
    (0.55, 0.40, 0.30, 0.25, 0.22, 0.25, 0.40, 0.65, 0.90, 1.05, 1.10, 1.10,
     1.05, 1.05, 1.10, 1.15, 1.20, 1.30, 1.45, 1.60, 1.70, 1.60, 1.30, 0.90)
)  # fmt: skip
# Monday first: a little quieter early in the week, busier Friday and the weekend.
DAY_OF_WEEK = normalised((0.95, 0.93, 0.94, 0.96, 1.05, 1.10, 1.07))
# Renovation noise: working hours, a dip at lunch, little at night (the hotspot's own profile).
RENOVATION_HOURS = normalised(
    (0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.20, 0.80, 1.80, 1.90, 1.90, 1.60,
     1.10, 1.40, 1.90, 1.90, 1.80, 1.30, 0.70, 0.50, 0.40, 0.30, 0.15, 0.05)
)  # fmt: skip

# Categories (codes of deploy/district/categories.json) within the non-police and the police share.
NON_POLICE_MIX: Mapping[str, float] = {
    "noise.renovation": 14, "noise.night": 8, "noise.commercial": 5,
    "dispute.market": 10, "dispute.neighbour": 12, "dispute.workplace": 6, "dispute.family": 5,
    "dispute.consumer": 5, "dispute.property": 4,
    "vendor.unlicensed": 5, "vendor.occupying_road": 4,
    "hazard.fire": 2, "hazard.structure": 1.5, "hazard.electric": 2,
    "environment.garbage": 4, "environment.pollution": 2, "traffic.parking": 5,
    "help.elderly": 2.5, "help.locked_out": 2, "public_order.gathering": 1, "other.unclassified": 2,
}  # fmt: skip
POLICE_MIX: Mapping[str, float] = {
    "traffic.accident": 30, "crime.theft": 25, "crime.fraud": 15, "crime.assault": 8,
    "public_order.fight": 12, "public_order.drunk": 6, "help.lost_person": 4,
}  # fmt: skip

# Where each family of calls happens: gazetteer place kinds, tried in the order given by their Zipf rank.
PLACE_KINDS: Mapping[str, tuple[str, ...]] = {
    "noise": ("COMPOUND", "VILLAGE", "MARKET"),
    "dispute": ("MARKET", "COMPOUND", "VILLAGE", "PARK"),
    "vendor": ("MARKET", "STREET_ADDRESS", "SCHOOL"),
    "hazard": ("PARK", "VILLAGE", "COMPOUND", "MARKET"),
    "environment": ("VILLAGE", "PARK"),
    "traffic": ("STREET_ADDRESS", "MARKET", "SCHOOL"),
    "help": ("VILLAGE", "COMPOUND", "PARK"),
}
ANY_PLACE = ("COMPOUND", "MARKET", "VILLAGE", "PARK", "SCHOOL", "STREET_ADDRESS", "OTHER")
PLACE_SHARE = 0.6  # calls at a named place; the rest at a random point of a grid
PLACE_ZIPF = 1.1  # weight of the place ranked r (gazetteer order) is 1 / r^s: a few places get most calls
GRID_KIND_WEIGHT: Mapping[str, float] = {"TOWN": 3.0, "INDUSTRIAL": 2.0, "VILLAGE": 1.0}
POINT_POOL = 256  # sample points per grid, drawn once
PLACE_POOL = 48  # sample points around each place, drawn once
PLACE_JITTER_DEG = 0.0005  # about 50 m

CALLERS_PER_ALARM = 1.0  # occasional callers: a pool this size per expected alarm (capped), drawn uniformly
MAX_CALLERS = 200_000
REGULAR_SHARE = 0.15  # calls made by the street's regulars, who call again and again
REGULARS_PER_ALARM = 0.01  # the regulars: this many per expected alarm, at least MIN_REGULARS
MIN_REGULARS = 5
HOTSPOT_CALLERS = 6  # the neighbours who keep calling about the renovation
HOTSPOT_REPEAT_SHARE = 0.7  # hotspot calls made by one of them

CHANNELS = Weighted.of([("CALL_110", 0.78), ("HOTLINE_12345", 0.12), ("GRID_PATROL", 0.07), ("SELF_REPORT", 0.03)])
SOURCES: Mapping[str, str] = {
    "CALL_110": "cad110", "HOTLINE_12345": "hotline12345", "GRID_PATROL": "gridapp", "SELF_REPORT": "gridapp",
}  # fmt: skip
NON_POLICE_PRIORITY = Weighted.of([(2, 0.15), (3, 0.55), (4, 0.30)])
POLICE_PRIORITY = Weighted.of([(1, 0.20), (2, 0.50), (3, 0.30)])
CALL_WITH_POINT = 0.85  # 110 calls that come with a position
LANGUAGES = Weighted.of([("zh-CN", 0.97), ("en", 0.02), ("zh-HK", 0.01)])

# Field response, each stage measured from the one before; dispatch is a few seconds after the alarm.
DISPATCH_S = (2.0, 6.0)
ACCEPT = Lognormal(24, 0.65)  # ≈ 90% within the 60 s target
CONTACT = Lognormal(55, 0.70)  # after acceptance: ≈ 90% within 180 s of the alarm
ARRIVE = Lognormal(170, 0.50)  # after contact: ≈ 90% on site within 480 s of the alarm
LATE_PICKUP = Lognormal(240, 0.60)  # never accepted: someone picks the case up after the escalation
PHONE_SETTLE = Lognormal(420, 0.70)  # settled by phone, after the contact
ON_SITE = Lognormal(1500, 0.60)  # mediation on site, after arrival
CLOSE = Lognormal(720, 0.60)  # reported back (办结反馈) after the conclusion
ABANDONED = Lognormal(5400, 0.50)  # never accepted and never worked: closed by the command room
CORRECTION = Lognormal(3 * 3600, 0.80)  # a corrected conclusion, after the close
ABANDON_SHARE = 0.5  # of the never-accepted cases: closed without field work
CONTACT_ON_SITE = Weighted.of([("PHONE", 0.80), ("IN_PERSON", 0.15), ("OTHER", 0.05)])
OTHER_OUTCOMES = Weighted.of(
    [("REFERRED", 0.45), ("ESCALATED_TO_POLICE", 0.25), ("UNRESOLVED", 0.20), ("NO_ACTION_NEEDED", 0.10)]
)
COMPENSATION_CATEGORIES = frozenset({"dispute.market", "dispute.consumer", "dispute.neighbour", "dispute.workplace"})
COMPENSATION_SHARE = 0.3  # of resolved disputes of those categories
COMPENSATION_YUAN = Lognormal(200, 1.0)  # same lognormal shape: mostly tens to hundreds of yuan, a tail to thousands
SUMMARIES: Mapping[str, str] = {
    "RESOLVED": "双方达成调解协议",
    "REFERRED": "移交相关部门处理",
    "ESCALATED_TO_POLICE": "转派出所处置",
    "UNRESOLVED": "调解未果，已告知当事人诉讼途径",
    "NO_ACTION_NEEDED": "到场核实无需处置",
}
REPORTED_TO = ("sipingtai", "police_station")
