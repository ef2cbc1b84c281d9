"""The simulator's knobs: one frozen SimConfig. Defaults come from the seed report where it gives a number.

Seed report (杭州钱塘区河庄街道, 警网协同): 700余起 non-police cases from April to the end of September, so about
700 / 183 ≈ 3.8 a day; a success rate of 98.7%; the 1/3/8-minute targets; 20多起 renovation-noise calls at
云上澜苑 since May, which fell after a rule took effect on 1 October. The police share of all 110 calls is not
in the report: 35% is an assumption (see README.md).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from streams.errors import AlarmflowError
from streams.simulator.stamps import to_ms

HEZHUANG = "330114005"
ALL_STREETS = "all"  # street_code for a run over every street of the district (streets.py)
NON_POLICE_PER_DAY = 700 / 183  # seed report: 700余起 non-police cases, April to September
POLICE_SHARE = 0.35  # assumption, not from the report
DEFAULT_RATE_PER_DAY = round(NON_POLICE_PER_DAY / (1 - POLICE_SHARE), 1)  # ≈ 5.9 alarms a day in all
HOTSPOT_CALLS = 24.0  # seed report: 20多起 renovation-noise calls at 云上澜苑
SUCCESS_SHARE = 0.987  # seed report: 成功率达98.7%
_UNITS = {"d": 1.0, "day": 1.0, "h": 24.0, "hour": 24.0, "min": 1440.0, "s": 86400.0, "sec": 86400.0}


class SimulationError(AlarmflowError):
    """The simulator cannot run with these options (unknown street, bad rate, a start without a time zone...)."""


@dataclass(frozen=True)
class SimConfig:
    """Every knob of one simulated run; the same config and district give byte-identical output.

    Shares are probabilities in [0, 1]. Days and hours may be fractional.
    """

    seed: int = 1
    start: datetime | None = None  # aware; None: the run ends now (see ``resolved``)
    days: float = 30.0  # simulated span in which alarms arrive
    drain_hours: float = 0.0  # field events of the last cases keep coming this long after the span (no new alarms)
    rate_per_day: float = DEFAULT_RATE_PER_DAY  # alarms of all kinds, averaged over the hour and weekday profiles
    street_code: str = HEZHUANG  # or ALL_STREETS: every street of the district, alarms shared by grid weight
    police_share: float = POLICE_SHARE  # alarms that are police matters: no field events
    hotspot_place: str | None = None  # a gazetteer place of the street; None: its first COMPOUND (云上澜苑)
    hotspot_calls: float = HOTSPOT_CALLS  # expected extra renovation-noise calls there over the run; 0: none
    hotspot_start_day: float | None = None  # day the build-up starts; None: 10% into the span
    hotspot_rule_day: float | None = None  # day the rule takes effect and calls decay; None: 80% into the span
    hotspot_half_life_days: float = 2.0  # how fast calls fall after the rule
    phone_only: float = 0.25  # cases settled by phone: PartyContacted PHONE, no ResponderArrived
    no_accept: float = 0.02  # cases whose InstructionAccepted never comes
    success: float = SUCCESS_SHARE  # conclusions that are RESOLVED
    correction: float = 0.005  # concluded cases that get a second MediationConcluded later, another outcome
    duplicates: float = 0.01  # events delivered twice (same event_id)
    disorder_s: float = 30.0  # lateness bound: no event is published after one more than this much younger
    disorder_share: float = 0.05  # events held back by up to disorder_s
    malformed: float = 0.001  # extra undecodable or invalid messages, per valid event
    # A street's own random streams within a run over every street (see streets.py); "" for a one-street run.
    scope: str = ""

    def __post_init__(self) -> None:
        if self.start is not None and self.start.tzinfo is None:
            raise SimulationError("start needs a time zone, e.g. 2026-05-01T00:00+08:00")
        if self.days <= 0 or self.rate_per_day <= 0:
            raise SimulationError("days and rate must be positive")
        if self.drain_hours < 0 or self.disorder_s < 0 or self.hotspot_calls < 0 or self.hotspot_half_life_days <= 0:
            raise SimulationError("drain_hours, disorder_s and hotspot_calls must be >= 0, the half-life > 0")
        for name in ("police_share", "phone_only", "no_accept", "success", "correction", "duplicates",
                     "disorder_share", "malformed"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SimulationError(f"{name} must be a share between 0 and 1")

    def resolved(self, now: datetime) -> SimConfig:
        """With no start, the run (and its drain) ends at ``now``: every event lies in the past when published."""
        if self.start is not None:
            return self
        return replace(self, start=default_start(now, self.days, self.drain_hours))

    def rng(self, stream: str) -> random.Random:
        """An independent seeded stream per concern, so changing one rate leaves the other draws alone."""
        name = f"{self.seed}/{self.scope}/{stream}" if self.scope else f"{self.seed}/{stream}"
        return random.Random(name)  # noqa: S311 -- a reproducible simulation, not secrecy

    def start_ms(self) -> int:
        """The start as UTC milliseconds; the config must be resolved."""
        if self.start is None:
            raise SimulationError("the simulation needs a start: use config.resolved(now)")
        return to_ms(self.start)

    def hotspot_days(self) -> tuple[float, float]:
        """(start day, rule day) of the renovation-noise hotspot, as days since the start of the run."""
        begin = self.days * 0.1 if self.hotspot_start_day is None else self.hotspot_start_day
        rule = self.days * 0.8 if self.hotspot_rule_day is None else self.hotspot_rule_day
        return begin, max(rule, begin)


def default_start(now: datetime, days: float, drain_hours: float = 0.0) -> datetime:
    """``now`` minus the span and the drain, rounded down to the minute."""
    if now.tzinfo is None:
        raise SimulationError("now needs a time zone")
    start = now - timedelta(days=days, hours=drain_hours)
    return start.replace(second=0, microsecond=0)


def parse_rate(text: str) -> float:
    """Alarms per day from ``6``, ``6/d``, ``250/h``, ``40/min`` or ``1000/s``."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([a-z]+))?\s*", text)
    if match is None or (match.group(2) or "d") not in _UNITS:
        raise SimulationError(f"rate {text!r}: write e.g. 6 (a day), 6/d, 250/h, 40/min or 1000/s")
    value = float(match.group(1)) * _UNITS[match.group(2) or "d"]
    if value <= 0:
        raise SimulationError(f"rate {text!r} must be positive")
    return value
