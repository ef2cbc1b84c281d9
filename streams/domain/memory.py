"""In-memory stores for the engines: what tests, tools and the benchmark use (the worker uses Faust tables)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from streams.domain.clock import PartitionClock
from streams.domain.hotspots import Sighting, Spot
from streams.domain.sla import Case


class MemoryCases:
    def __init__(self) -> None:
        self.data: dict[str, Case] = {}

    def get(self, case_id: str) -> Case | None:
        return self.data.get(case_id)

    def put(self, case: Case) -> None:
        self.data[case.case_id] = case

    def delete(self, case_id: str) -> None:
        self.data.pop(case_id, None)

    def in_partition(self, partition: int) -> Iterable[Case]:
        return [c for c in self.data.values() if c.partition == partition]


class MemoryClocks:
    def __init__(self) -> None:
        self.data: dict[int, PartitionClock] = {}

    def get(self, partition: int) -> PartitionClock:
        return self.data.get(partition, PartitionClock())

    def put(self, partition: int, clock: PartitionClock) -> None:
        self.data[partition] = clock


class MemorySpots:
    def __init__(self) -> None:
        self.data: dict[str, tuple[int, Spot]] = {}

    def get(self, hotspot_id: str) -> Spot | None:
        stored = self.data.get(hotspot_id)
        return None if stored is None else stored[1]

    def put(self, partition: int, spot: Spot) -> None:
        self.data[spot.hotspot_id] = (partition, spot)

    def in_partition(self, partition: int) -> Iterable[Spot]:
        return [spot for p, spot in self.data.values() if p == partition]


class MemoryPending:
    def __init__(self) -> None:
        self.data: dict[tuple[int, datetime, str], Sighting] = {}

    def add(self, partition: int, s: Sighting) -> None:
        self.data[(partition, *s.order)] = s

    def remove(self, partition: int, s: Sighting) -> None:
        self.data.pop((partition, *s.order), None)

    def in_partition(self, partition: int) -> Iterable[Sighting]:
        return [s for (p, *_), s in self.data.items() if p == partition]


class MemoryProgress:
    def __init__(self) -> None:
        self.data: dict[int, dict[int, datetime]] = {}

    def get(self, partition: int) -> dict[int, datetime]:
        return dict(self.data.get(partition, {}))

    def put(self, partition: int, progress: dict[int, datetime]) -> None:
        self.data[partition] = dict(progress)
