"""``alarmflow verify``: the streamed aggregates against a batch recount by SQL from the raw projections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.query import QueryResult
from projections.recount import HOTSPOT_DIFFERENCES, OUTCOME_DIFFERENCES, TOTALS
from streams.domain.hotspots import HotspotPolicy
from streams.query_client import query
from streams.settings import Settings

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Verification:
    totals: dict[str, Any]
    outcome_differences: QueryResult
    hotspot_differences: QueryResult

    @property
    def differences(self) -> int:
        return len(self.outcome_differences.rows) + len(self.hotspot_differences.rows)


def hotspot_parameters(policy: HotspotPolicy) -> dict[str, Any]:
    families = sorted(policy.by_family)
    return {
        "families": families,
        "windows_ms": [policy.by_family[f].window.days * DAY_MS for f in families],
        "thresholds": [policy.by_family[f].threshold for f in families],
        "default_window_ms": policy.default.window.days * DAY_MS,
        "default_threshold": policy.default.threshold,
    }


def verify(settings: Settings, policy: HotspotPolicy) -> Verification:
    totals = query(settings, TOTALS)
    return Verification(
        dict(zip(totals.columns, totals.rows[0], strict=True)),
        query(settings, OUTCOME_DIFFERENCES, {"success": sorted(settings.success)}),
        query(settings, HOTSPOT_DIFFERENCES, hotspot_parameters(policy)),
    )
