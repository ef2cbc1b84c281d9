"""When alarms arrive: non-homogeneous Poisson processes, drawn by thinning (Lewis–Shedler).

Candidates come at the peak rate; each is kept with probability rate(t) / peak. That is exact for any
rate shape, streams in time order and costs a few draws per alarm, at 6 a day or 6000 a second.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator

from streams.simulator import profiles as p
from streams.simulator.config import SimConfig
from streams.simulator.stamps import DAY_MS, local_hour, local_weekday

Arrival = tuple[int, bool]  # (UTC ms, is a hotspot call)


def arrivals(config: SimConfig, start_ms: int, end_ms: int, hotspot: bool = True) -> Iterator[Arrival]:
    """Every alarm's time in [start, end), in order: the street's calls merged with the hotspot's (if it has one)."""
    base = _thinned(config.rng("arrivals"), start_ms, end_ms, config.rate_per_day, _street_shape)
    peak, shape = hotspot_shape(config, start_ms)
    extra = _thinned(config.rng("hotspot"), start_ms, end_ms, peak, shape) if hotspot and peak > 0 else iter(())
    return heapq.merge(((t, False) for t in base), ((t, True) for t in extra))


def _street_shape(ms: int) -> float:
    return p.HOUR_OF_DAY[local_hour(ms)] * p.DAY_OF_WEEK[local_weekday(ms)]


def _thinned(
    rng: random.Random, start_ms: int, end_ms: int, per_day: float, shape: Callable[[int], float]
) -> Iterator[int]:
    """Times of a Poisson process with rate per_day * shape(t); shape must stay within [0, its profiles' max]."""
    top = per_day / 86_400.0 * max(p.HOUR_OF_DAY + p.RENOVATION_HOURS) * max(p.DAY_OF_WEEK)  # per second
    t, end = start_ms / 1000.0, end_ms / 1000.0
    while True:
        t += rng.expovariate(top)
        if t >= end:
            return
        ms = int(t * 1000)
        if rng.random() * top < per_day / 86_400.0 * shape(ms):
            yield ms


def hotspot_shape(config: SimConfig, start_ms: int) -> tuple[float, Callable[[int], float]]:
    """The hotspot's calls a day at its peak, and its shape: zero, a linear build-up from the start day to the
    rule day, then halving every half-life; scaled so the run expects ``hotspot_calls`` calls in all."""
    begin, rule = config.hotspot_days()
    half = config.hotspot_half_life_days
    area = _ramp_area(begin, rule, config.days) + _decay_area(rule, half, config.days)
    if config.hotspot_calls <= 0 or area <= 0:
        return 0.0, lambda ms: 0.0

    def shape(ms: int) -> float:
        day = (ms - start_ms) / DAY_MS
        if day < begin:
            level = 0.0
        elif day < rule:
            level = (day - begin) / (rule - begin)
        else:
            level = 0.5 ** ((day - rule) / half)
        return level * p.RENOVATION_HOURS[local_hour(ms)] * p.DAY_OF_WEEK[local_weekday(ms)]

    return config.hotspot_calls / area, shape


def _ramp_area(begin: float, rule: float, days: float) -> float:
    if days <= begin or rule <= begin:
        return 0.0
    until = min(rule, days)
    return (until - begin) ** 2 / (2 * (rule - begin))


def _decay_area(rule: float, half: float, days: float) -> float:
    if days <= rule:
        return 0.0
    remaining: float = 0.5 ** ((days - rule) / half)
    return half / math.log(2) * (1 - remaining)
