"""Median, min and max of repetitions, and percentiles of latency samples."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """The median and min/max of the repetitions, with every value kept."""
    if not values:
        raise ValueError("no values to summarise")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "values": [round(v, digits) for v in values],
        "n": len(values),
    }


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of the samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> float:
    return round(float(numerator["median"]) / float(denominator["median"]), 3)


def headline(name: str, unit: str, stats: dict[str, Any]) -> dict[str, Any]:
    """A figure's one number for the table: the median of its repetitions, with their min and max."""
    return {
        "name": name,
        "unit": unit,
        "value": stats["median"],
        "min": stats["min"],
        "max": stats["max"],
        "n": stats["n"],
    }
