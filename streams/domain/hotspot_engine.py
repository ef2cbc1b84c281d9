"""One routing partition's hotspot engine: watermark, pending alarms, spots. Pure; storage is injected.

A routing partition merges alarms triaged from every alarms partition, and those are consumed at
their own pace (in a backfill, days apart). So its watermark is the minimum of the alarms
partitions' watermarks, which the triage agent announces on every tick (ClockTicked with tick_id
``progress/<partition>``, sent after the alarms before it). Alarms wait until that watermark
passes them; then they and the window expiries are folded in event-time order. Alarms in any
arrival order within the lateness give the same episodes, and a replay gives the same events.
An alarm later than that is folded at the next drain, at its own time; counts reported before it
arrived are not revised.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import partial
from typing import Protocol

from schemas.event import Event
from streams.domain.district import District
from streams.domain.hotspots import HotspotPolicy, Sighting, Spot, expire, family, new_spot, observe
from streams.domain.sla_engine import Step


class SpotStore(Protocol):
    def get(self, hotspot_id: str) -> Spot | None: ...

    def put(self, partition: int, spot: Spot) -> None: ...

    def in_partition(self, partition: int) -> Iterable[Spot]: ...


class ProgressStore(Protocol):
    """Per routing partition: the latest announced watermark of each alarms partition."""

    def get(self, partition: int) -> dict[int, datetime]: ...

    def put(self, partition: int, progress: dict[int, datetime]) -> None: ...


class PendingStore(Protocol):
    """Alarms waiting for the watermark, one entry each (a backfill can hold many)."""

    def add(self, partition: int, s: Sighting) -> None: ...

    def remove(self, partition: int, s: Sighting) -> None: ...

    def in_partition(self, partition: int) -> Iterable[Sighting]: ...


def sighting(event: Event, district: District) -> Sighting | None:
    """A non-police alarm located in a street, with a place; None for everything else."""
    f = event.fields
    if event.type != "AlarmTriaged" or f["disposition"] != "NON_POLICE" or not f["street_code"]:
        return None
    key = f.get("place_key")
    if not key:
        return None
    category = district.category(f["category"])
    return Sighting(
        event.occurred_at,
        f["case_id"],
        key,
        f["place"],
        family(f["category"]),
        f["street_code"],
        f["grid_code"],
        None if category is None else category.team.value,
    )


class HotspotEngine:
    def __init__(
        self,
        district: District,
        policy: HotspotPolicy,
        sources: int,
        spots: SpotStore,
        pending: PendingStore,
        progress: ProgressStore,
    ) -> None:
        self.district, self.policy, self.sources = district, policy, sources
        self.spots, self.pending, self.progress = spots, pending, progress
        self._due: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        self._waiting: dict[int, list[tuple[tuple[datetime, str], Sighting]]] = defaultdict(list)  # a heap by order
        self._held: dict[int, set[tuple[datetime, str]]] = defaultdict(set)  # the orders in the heap
        self._indexed: set[int] = set()

    def forget_index(self) -> None:
        self._due.clear()
        self._waiting.clear()
        self._held.clear()
        self._indexed.clear()

    def watermark(self, partition: int) -> datetime | None:
        """How far every alarms partition has provably progressed; None until each has said so once."""
        known = self.progress.get(partition)
        return min(known.values()) if len(known) >= self.sources else None

    def on_record(self, partition: int, event: Event) -> Iterator[Step]:
        self._ensure_index(partition)
        if event.type == "ClockTicked":
            known = self.progress.get(partition)
            source, at = event.fields["partition"], event.occurred_at
            if source not in known or at > known[source]:
                self.progress.put(partition, {**known, source: at})
        else:
            s = sighting(event, self.district)
            if s is not None:
                self._hold(partition, s)
        watermark = self.watermark(partition)
        if watermark is not None:
            yield from self._drain(partition, watermark)

    def _hold(self, partition: int, s: Sighting) -> None:
        """Every alarm waits in the pending list, even one older than the watermark (late, or re-delivered
        after a restart whose restored state is ahead of the input): the drain then folds it in order, after
        the pending alarms before it. One already folded (still in its spot's window) is not added again."""
        spot = self.spots.get(s.hotspot_id)
        if spot is not None and (s.at, s.case_id) in spot.entries:
            return
        if s.order not in self._held[partition]:
            self._held[partition].add(s.order)
            heapq.heappush(self._waiting[partition], (s.order, s))
            self.pending.add(partition, s)

    def _drain(self, partition: int, watermark: datetime) -> Iterator[Step]:
        """Alarms and expiries up to the watermark, in event-time order (an expiry before an alarm at the
        same time). Each decision reads the one before it, so they run on an overlay; the stored state
        changes only once their events are published."""
        waiting, due = self._waiting[partition], self._due[partition]
        changed: dict[str, Spot] = {}
        events: list[Event] = []
        taken: list[Sighting] = []
        while True:
            next_alarm = waiting[0][1].at if waiting and waiting[0][1].at <= watermark else None
            next_expiry = due[0][0] if due and due[0][0] <= watermark else None
            if next_alarm is None and next_expiry is None:
                break
            if next_expiry is not None and (next_alarm is None or next_expiry <= next_alarm):
                hotspot_id = heapq.heappop(due)[1]
                spot = changed.get(hotspot_id) or self.spots.get(hotspot_id)
                if spot is None:
                    continue
                updated, out = expire(spot, next_expiry, self.policy.rule(spot.family))
            else:
                s = heapq.heappop(waiting)[1]
                self._held[partition].discard(s.order)
                taken.append(s)
                spot = changed.get(s.hotspot_id) or self.spots.get(s.hotspot_id) or new_spot(s)
                updated, out = observe(spot, s, self.policy.rule(s.family))
            if updated != spot:
                changed[updated.hotspot_id] = updated
                self._index(partition, updated)
            events += out
        if taken or changed:
            yield Step(events, partial(self._commit, partition, taken, list(changed.values())))

    def _commit(self, partition: int, taken: list[Sighting], spots: list[Spot]) -> None:
        for s in taken:
            self.pending.remove(partition, s)
        for spot in spots:
            self.spots.put(partition, spot)

    def _index(self, partition: int, spot: Spot) -> None:
        expiry = spot.next_expiry(self.policy.rule(spot.family))
        if expiry is not None:
            heapq.heappush(self._due[partition], (expiry, spot.hotspot_id))

    def _ensure_index(self, partition: int) -> None:
        if partition not in self._indexed:
            for spot in self.spots.in_partition(partition):
                self._index(partition, spot)
            self._waiting[partition] = [(s.order, s) for s in self.pending.in_partition(partition)]
            heapq.heapify(self._waiting[partition])
            self._held[partition] = {order for order, _ in self._waiting[partition]}
            self._indexed.add(partition)
