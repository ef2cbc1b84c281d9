"""The district, precomputed once for fast draws: sample points, weighted places, categories, rosters, callers.

Everything random here comes from the run's seed, so a World is a pure function of (district, config).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time

import shapely
from shapely.geometry import Polygon

from streams.domain.district import Category, Disposition, District, Grid, Member, Place, PlaceKind, Street, Team
from streams.simulator import profiles as p
from streams.simulator.config import SimConfig, SimulationError

Point = tuple[float, float]  # (lat, lon), rounded to 6 places (about 0.1 m)
SLOTS = 48  # half hours of a day
FALLBACK_TEAMS = (Team.GRID_WORKER, Team.GOVERNANCE)


@dataclass(frozen=True)
class Spot:
    """Where calls happen: a gazetteer place, or anywhere in a grid (``place`` None)."""

    grid_code: str
    kind: str  # a PlaceKind, or the grid's kind (TOWN, VILLAGE, INDUSTRIAL) when place is None
    label: str  # the place's name, or the grid's name without 网格
    points: tuple[Point, ...] = field(repr=False)
    place: Place | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Kind:
    """A category as the simulator draws it."""

    code: str
    name: str
    team: str
    police: bool
    places: p.Weighted[Spot] | None = field(repr=False)


@dataclass(frozen=True)
class World:
    street: Street
    prefix: str  # alarm ids start with it: HZ
    police: p.Weighted[Kind]
    non_police: p.Weighted[Kind]
    grids: p.Weighted[Spot]
    hotspot: Spot | None
    renovation: Kind | None
    duty: Mapping[tuple[str, str], tuple[tuple[str, ...], ...]]  # (grid, team) → member ids on duty, per half hour
    callers: tuple[str, ...]  # occasional callers
    regulars: tuple[str, ...]  # callers who call again and again
    hotspot_callers: tuple[str, ...]

    @classmethod
    def build(cls, district: District, config: SimConfig) -> World:
        street = district.street(config.street_code)
        if street is None:
            raise SimulationError(f"street {config.street_code!r} is not in the district's streets.json")
        rng = config.rng("world")
        grids = [g for g in district.grids if g.street_code == street.code]
        grid_spots = [_grid_spot(g, rng) for g in grids]
        place_spots = _place_spots(district, street.code, rng)
        kinds = {c.code: _kind(c, place_spots) for c in district.categories}
        hotspot = _hotspot(place_spots, config)
        expected = config.rate_per_day * config.days
        return cls(
            street,
            grids[0].code.split("-")[0] if "-" in grids[0].code else street.name_en[:2].upper(),
            p.Weighted.of([(kinds[c], w) for c, w in p.POLICE_MIX.items() if c in kinds]),
            p.Weighted.of([(kinds[c], w) for c, w in p.NON_POLICE_MIX.items() if c in kinds]),
            p.Weighted.of([(s, p.GRID_KIND_WEIGHT.get(s.kind, 1.0)) for s in grid_spots]),
            hotspot,
            kinds.get("noise.renovation"),
            _duty(district, street.code, [g.code for g in grids]),
            _phones(rng, min(max(expected * p.CALLERS_PER_ALARM, 50), p.MAX_CALLERS)),
            _phones(rng, max(expected * p.REGULARS_PER_ALARM, p.MIN_REGULARS)),
            _phones(rng, p.HOTSPOT_CALLERS),
        )


def _grid_spot(grid: Grid, rng: random.Random) -> Spot:
    label = grid.name.removesuffix("网格")
    return Spot(grid.code, grid.kind.value, label, _points_in(grid.polygon, rng))


def _points_in(polygon: Polygon, rng: random.Random) -> tuple[Point, ...]:
    """POINT_POOL points uniformly inside the polygon, by rejection from its bounds, checked in batches."""
    west, south, east, north = polygon.bounds
    found: list[Point] = []
    while len(found) < p.POINT_POOL:
        lons = [rng.uniform(west, east) for _ in range(p.POINT_POOL)]
        lats = [rng.uniform(south, north) for _ in range(p.POINT_POOL)]
        inside = shapely.contains_xy(polygon, lons, lats)
        found += [(round(y, 6), round(x, 6)) for x, y, ok in zip(lons, lats, inside, strict=True) if ok]
    return tuple(found[: p.POINT_POOL])


def _near(place: Place, polygon: Polygon, rng: random.Random) -> tuple[Point, ...]:
    """PLACE_POOL points within about 50 m of the place, inside its grid (the place itself always is)."""
    j = p.PLACE_JITTER_DEG
    lons = [place.lon + rng.uniform(-j, j) for _ in range(p.PLACE_POOL)]
    lats = [place.lat + rng.uniform(-j, j) for _ in range(p.PLACE_POOL)]
    inside = shapely.contains_xy(polygon, lons, lats)
    kept = [(round(y, 6), round(x, 6)) for x, y, ok in zip(lons, lats, inside, strict=True) if ok]
    return tuple(kept) or ((round(place.lat, 6), round(place.lon, 6)),)


def _place_spots(district: District, street: str, rng: random.Random) -> list[tuple[Spot, float]]:
    """The street's places with Zipf weights by their rank in the gazetteer (its first entries are the hottest)."""
    spots: list[tuple[Spot, float]] = []
    for place in (x for x in district.places if x.street_code == street):
        grid = district.grid(place.grid_code)
        if grid is None:
            continue
        spot = Spot(place.grid_code, place.kind.value, place.name, _near(place, grid.polygon, rng), place)
        spots.append((spot, 1.0 / (len(spots) + 1) ** p.PLACE_ZIPF))
    return spots


def _kind(category: Category, places: list[tuple[Spot, float]]) -> Kind:
    family = category.code.split(".")[0]
    kinds = p.PLACE_KINDS.get(family, p.ANY_PLACE)
    fitting = [(s, w) for s, w in places if s.kind in kinds]
    police = category.disposition == Disposition.POLICE or category.code in p.POLICE_MIX
    return Kind(category.code, category.name, category.team.value, police, p.Weighted.of(fitting) if fitting else None)


def _hotspot(places: list[tuple[Spot, float]], config: SimConfig) -> Spot | None:
    if config.hotspot_calls == 0:
        return None
    for spot, _ in places:
        if spot.label == config.hotspot_place or (config.hotspot_place is None and spot.kind == PlaceKind.COMPOUND):
            return spot
    if config.hotspot_place is None:
        return None  # a street without compounds has no renovation hotspot
    raise SimulationError(f"hotspot place {config.hotspot_place!r} is not in the gazetteer of {config.street_code}")


def _phones(rng: random.Random, count: float) -> tuple[str, ...]:
    """Mobile numbers like 13812341234."""
    return tuple(f"13{rng.randrange(10**9):09d}" for _ in range(int(count)))


def _duty(district: District, street: str, grids: list[str]) -> dict[tuple[str, str], tuple[tuple[str, ...], ...]]:
    """Per grid and team, who is on duty in each half hour: the grid's members, else the street's pool for
    the team, else the grid's own grid or governance workers, else anyone of the street."""
    by_unit: dict[tuple[str | None, str], list[Member]] = defaultdict(list)
    for m in district.members:
        if m.street_code == street:
            by_unit[(m.grid_code, m.team.value)].append(m)
    everyone = sorted(m.member_id for ms in by_unit.values() for m in ms) or [f"{street}-COMMAND"]
    slot_times = [time(s // 2, 30 * (s % 2)) for s in range(SLOTS)]
    # Each unit's members on duty per half hour, once: the street pools are asked for every grid (a city has
    # hundreds of grids), so computing them per grid made building a city's worlds take seconds.
    on = {
        unit: [tuple(sorted(m.member_id for m in members if m.on_duty_at(at))) for at in slot_times]
        for unit, members in by_unit.items()
    }
    nobody: list[tuple[str, ...]] = [()] * SLOTS
    anyone = tuple(everyone)
    fallbacks = [t.value for t in FALLBACK_TEAMS]

    def picks(grid: str, team: str) -> tuple[tuple[str, ...], ...]:
        units = [(grid, team), (None, team), *((grid, t) for t in fallbacks), *((None, t) for t in fallbacks)]
        chain = [on.get(unit, nobody) for unit in units]
        return tuple(next((ids for per_slot in chain if (ids := per_slot[s])), anyone) for s in range(SLOTS))

    return {(g, t.value): picks(g, t.value) for g in grids for t in Team}
