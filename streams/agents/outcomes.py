"""Outcome and hotspot agents. The folds are pure (streams.domain.outcomes, .hotspots); these adapt them.

Topology (keys in brackets):
  case-events [case] ──sla engine──► outcomes [stats_key]: OutcomeCounted (a case's counted conclusion)
  outcomes [stats_key] ──outcomes──► outcome-stats [stats_key]: OutcomeStatsUpdated (table: outcome-daily)
  routing [street] ──hotspots──► hotspots [hotspot_id]: HotspotDetected/Updated/Cooled
                                  (tables: hotspot-spots, hotspot-pending, hotspot-clocks)
Outputs are acknowledged before the state that records them is logged (streams.agents.staging).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import faust
from faust.types import EventT, StreamT

from schemas.codec import Codec
from schemas.event import from_millis, to_millis
from streams.agents.common import raw_topic
from streams.agents.staging import Batcher
from streams.domain.district import District
from streams.domain.hotspot_engine import HotspotEngine
from streams.domain.hotspots import HotspotPolicy, Sighting, Spot, spot_from_dict, spot_to_dict
from streams.domain.outcomes import DailyOutcome, outcome_from_dict, outcome_to_dict
from streams.settings import Settings

KEY_FIELDS = ("stats_key", "street_code", "grid_code", "category", "team", "local_day")


class TableSpots:
    """SpotStore on a Faust table (the partition is kept so a rebalance can index its own spots only)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, hotspot_id: str) -> Spot | None:
        stored = self.table.get(hotspot_id)
        return None if stored is None else spot_from_dict(stored)

    def put(self, partition: int, spot: Spot) -> None:
        self.table[spot.hotspot_id] = {**spot_to_dict(spot), "partition": partition}

    def in_partition(self, partition: int) -> Iterable[Spot]:
        return [spot_from_dict(v) for v in list(self.table.values()) if v is not None and v["partition"] == partition]


class TablePending:
    """PendingStore on a Faust table: one entry per waiting alarm (a backfill may hold thousands)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @staticmethod
    def _key(partition: int, s: Sighting) -> str:
        return f"{partition}|{to_millis(s.at)}|{s.case_id}"

    def add(self, partition: int, s: Sighting) -> None:
        self.table[self._key(partition, s)] = {**_sighting_dict(s), "partition": partition}

    def remove(self, partition: int, s: Sighting) -> None:
        self.table.pop(self._key(partition, s), None)

    def in_partition(self, partition: int) -> list[Sighting]:
        return [
            _sighting({k: v for k, v in d.items() if k != "partition"})
            for d in list(self.table.values())
            if d is not None and d["partition"] == partition
        ]


class TableProgress:
    """ProgressStore on a Faust table: alarms partition → announced watermark (epoch ms), per routing partition."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, partition: int) -> dict[int, datetime]:
        stored = self.table.get(str(partition)) or {}
        return {int(k): from_millis(v) for k, v in stored.items()}

    def put(self, partition: int, progress: dict[int, datetime]) -> None:
        self.table[str(partition)] = {str(k): to_millis(v) for k, v in progress.items()}


def _sighting_dict(s: Sighting) -> dict[str, Any]:
    return {**s.__dict__, "at": to_millis(s.at)}


def _sighting(d: dict[str, Any]) -> Sighting:
    return Sighting(**{**d, "at": from_millis(d["at"])})


def register(app: faust.App, settings: Settings, codec: Codec, district: District, policy: HotspotPolicy) -> None:
    n = settings.partitions
    outcomes = raw_topic(app, settings.topic("outcomes"))
    stats = raw_topic(app, settings.topic("outcome-stats"))
    routing = raw_topic(app, settings.topic("routing"))
    hotspots = raw_topic(app, settings.topic("hotspots"))
    success = settings.success

    def batcher() -> Batcher:
        return Batcher(codec, settings.agent_batch_max, settings.agent_batch_within_ms)

    folding = batcher()
    daily = folding.table(app.Table("outcome-daily", default=None, key_type=str, value_type=None, partitions=n))

    async def fold_one(record: EventT[bytes]) -> None:
        counted = codec.decode(record.value or b"")  # internal topic: written only by our own agents
        f = counted.fields
        stored = daily.get(f["stats_key"])
        current = outcome_from_dict(stored) if stored else DailyOutcome({k: f[k] for k in KEY_FIELDS})
        updated = current.apply(f)
        if updated is not current:
            await folding.outbox.send(stats, updated.stats_event(success, counted.occurred_at))
            daily[f["stats_key"]] = outcome_to_dict(updated)

    @app.agent(outcomes, name="outcomes")
    async def fold_outcomes(stream: StreamT[bytes]) -> None:
        await folding.run(stream, fold_one)

    watching = batcher()

    def table(name: str) -> Any:
        return watching.table(app.Table(name, default=None, key_type=str, value_type=None, partitions=n))

    engine = HotspotEngine(
        district,
        policy,
        n,  # alarms partitions announcing their progress
        TableSpots(table("hotspot-spots")),
        TablePending(table("hotspot-pending")),
        TableProgress(table("hotspot-progress")),
    )

    async def watch_one(record: EventT[bytes]) -> None:
        for step in engine.on_record(record.message.partition, codec.decode(record.value or b"")):
            for e in step.events:
                await watching.outbox.send(hotspots, e)
            step.commit()

    @app.agent(routing, name="hotspots")
    async def watch_places(stream: StreamT[bytes]) -> None:
        await watching.run(stream, watch_one)

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        engine.forget_index()

    app.on_partitions_assigned.connect(_rebalanced)
