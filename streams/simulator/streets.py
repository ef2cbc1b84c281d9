"""A run over every street of the district (``street_code = "all"``): one simulated street per street, merged.

Each street is simulated as in a one-street run, with its own random streams (``SimConfig.scope``) and its
share of the rate: the sum of its grids' call weights (``profiles.GRID_KIND_WEIGHT``, the weights that spread
calls over one street's grids) over the district's. The renovation hotspot is one place in the city: the
street whose gazetteer holds ``hotspot_place``, or else the first street (streets.json order) with a compound.
The merged stream then gets the run's imperfections (re-deliveries, disorder, broken messages) once.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import replace

from streams.domain.district import District, PlaceKind
from streams.simulator import profiles as p
from streams.simulator.config import SimConfig, SimulationError
from streams.simulator.events import SimEvent


def street_weights(district: District) -> dict[str, float]:
    """Street code → its share of the calls, in streets.json order; the shares add up to 1."""
    weights = dict.fromkeys((s.code for s in district.streets), 0.0)
    for grid in district.grids:
        weights[grid.street_code] += p.GRID_KIND_WEIGHT.get(grid.kind.value, 1.0)
    total = sum(weights.values())
    return {code: w / total for code, w in weights.items()}


def hotspot_street(config: SimConfig, district: District) -> str | None:
    """The street of the run's one hotspot; None when no street has a compound (and no place was named)."""
    for place in district.places:
        if place.name == config.hotspot_place or (config.hotspot_place is None and place.kind == PlaceKind.COMPOUND):
            return place.street_code
    if config.hotspot_place is None:
        return None
    raise SimulationError(f"hotspot place {config.hotspot_place!r} is not in the gazetteer of any street")


def per_street(config: SimConfig, district: District) -> list[SimConfig]:
    """One config per street: its share of the rate, its own random streams, the hotspot only where it is."""
    hot = hotspot_street(config, district) if config.hotspot_calls > 0 else None
    return [
        replace(
            config,
            street_code=code,
            rate_per_day=config.rate_per_day * share,
            hotspot_calls=config.hotspot_calls if code == hot else 0.0,
            scope=code,
        )
        for code, share in street_weights(district).items()
    ]


def merged(
    config: SimConfig, district: District, originals: Callable[[SimConfig, District], Iterator[SimEvent]]
) -> Iterator[SimEvent]:
    """Every street's events once, in event-time order (ties: streets.json order)."""
    streams = [originals(c, district) for c in per_street(config, district)]
    return heapq.merge(*streams, key=lambda e: e.occurred_ms)
