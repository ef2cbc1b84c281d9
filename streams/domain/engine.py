"""What every engine shares: the record it is fed, what it emits, and how its state changes are tracked. Pure.

Each agent feeds one engine the records of one input topic, a batch at a time, in log order per
partition. The engine changes its in-memory state and returns what to publish. After the batch the
agent publishes the emits (those marked ``after`` only once everything before them is acknowledged),
then logs the state changes the engine hands over, then acknowledges the input. A crash anywhere
before the end repeats the batch: outputs may repeat (with the same event ids), never go missing.

State changes of one partition are logged in an order that makes every prefix safe to recover
from: entries written or updated first, deletions next (those marked ``first`` before the others), the
partition's clock last. A crash that logs only part of a batch can therefore leave an entry both added
and not yet removed elsewhere (the engines treat a second sighting as a repeat), but never a clock ahead
of the entries it covers. An engine whose logical entry spans several keys (a hotspot's header and its
window) orders its own keys within these rules and checks them against each other when it loads.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.event import Event

META = "meta"  # the key of a partition's clock and progress: always logged last


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed record as an engine needs it: the event, where it came from, and whether this deployment wrote it.

    ``own`` is False for derived events (dispatches, ticks, hand-offs) another deployment sharing the topics
    wrote: an engine decides only from its own deployment's derived events, so a fresh deployment over old
    topics reprocesses the upstream events as a backfill instead of mixing two deployments' decisions."""

    event: Event
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    appended_at: datetime
    own: bool = True

    @property
    def origin(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset


@dataclass(frozen=True, slots=True)
class Emit:
    """An event to publish to a topic (by its suffix, e.g. ``case-events``).

    ``key`` defaults to the event's contract key; ``partition`` pins a partition (progress announcements go
    to each one); ``after`` holds it back until every emit before it is acknowledged, so a downstream
    partition never sees an announcement before the records it covers."""

    topic: str
    event: Event
    key: str | None = None
    partition: int | None = None
    after: bool = False


class Changes:
    """The keys of one partition's state changed since the last flush, in the order they were last changed.

    A key created and deleted between two flushes was never logged, so it is not logged at all (no value, no
    tombstone): an alarm that waits for the watermark and is folded in the same batch costs the changelog
    nothing."""

    def __init__(self) -> None:
        self._puts: dict[str, None] = {}
        self._first: dict[str, None] = {}  # deletions logged before the others
        self._deletes: dict[str, None] = {}
        self._fresh: set[str] = set()  # created since the last flush: absent from the logged state

    def put(self, key: str, new: bool = False) -> None:
        """``new``: the key is not in the state (so, unless deleted since the last flush, not in the log)."""
        deleted = key in self._deletes or key in self._first
        self._deletes.pop(key, None)
        self._first.pop(key, None)
        if new and not deleted:
            self._fresh.add(key)
        self._puts.pop(key, None)  # re-inserted last: the latest write decides its place in the order
        self._puts[key] = None

    def delete(self, key: str, first: bool = False) -> None:
        """``first``: log this deletion before the others (a header whose absence makes its parts moot)."""
        self._puts.pop(key, None)
        if key in self._fresh:
            self._fresh.discard(key)
            return
        (self._first if first else self._deletes)[key] = None

    def drain(self) -> tuple[list[str], list[str]]:
        """(written keys, deleted keys), META last among the written; forgets them."""
        puts, deletes = list(self._puts), [*self._first, *self._deletes]
        self._puts.clear()
        self._first.clear()
        self._deletes.clear()
        self._fresh.clear()
        if META in puts:
            puts.remove(META)
            puts.append(META)
        return puts, deletes

    def __bool__(self) -> bool:
        return bool(self._puts or self._first or self._deletes)


def flush_order(
    value_of: Callable[[str], Any], changes: Changes, meta: Any | None = None
) -> list[tuple[str, Any | None]]:
    """The changes as (key, value or None for a deletion): writes, deletions, then META (see the module doc).
    ``value_of`` gives a written key's value as stored (usually the state dict's ``__getitem__``)."""
    puts, deletes = changes.drain()
    out: list[tuple[str, Any | None]] = [(k, value_of(k)) for k in puts if k != META]
    out += [(k, None) for k in deletes]
    if META in puts:
        out.append((META, meta))
    return out


class Frontier:
    """The watermarks announced by each of ``sources`` upstream partitions; their minimum once all have spoken.

    A stage that merges several partitions may trust an event time only once every one of them has
    passed it."""

    def __init__(self, sources: int, known: Mapping[int, datetime] | None = None) -> None:
        self.sources = sources
        self.known: dict[int, datetime] = dict(known or {})

    def announce(self, source: int, at: datetime) -> bool:
        """Record an announcement; True if it moved that source forward."""
        if source in self.known and at <= self.known[source]:
            return False
        self.known[source] = at
        return True

    @property
    def watermark(self) -> datetime | None:
        if len(self.known) < self.sources:
            return None
        return min(self.known.values())


class Agenda:
    """Keys by the time they are next due, one live time per key, bounded by the number of keys.

    A binary heap with lazy deletion: setting a key to a new time (or clearing it) leaves its old heap entry
    behind, skipped when it surfaces. Left alone, those stale entries would pile up with every update of a
    key whose time moves later (a settled case's retention, after each of its events) until the clock
    reached them; so once the heap holds more than twice the live keys (plus a little slack), it is rebuilt
    from the live ones. The heap then never exceeds ``2 * len(self) + SLACK`` entries, and each update stays
    O(log n) amortised. The order keys come out in is (time, key), whatever the heap's history."""

    SLACK = 64  # below this many stale entries a rebuild is not worth its pass

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._at: dict[str, datetime] = {}

    def set(self, key: str, at: datetime | None) -> None:
        if at is None:
            if self._at.pop(key, None) is not None:  # its heap entry is now stale
                self._bound()
            return
        if self._at.get(key) == at:
            return
        self._at[key] = at
        heapq.heappush(self._heap, (at, key))
        self._bound()

    def _bound(self) -> None:
        if len(self._heap) > 2 * len(self._at) + self.SLACK:
            self._heap = [(at, key) for key, at in self._at.items()]
            heapq.heapify(self._heap)

    def pop_before(self, until: datetime) -> list[str]:
        """Keys due strictly before ``until``, each once, in time then key order; they leave the agenda
        (the caller sets them again if they are still due later)."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] < until:
            at, key = heapq.heappop(heap)
            if self._at.get(key) == at:
                del self._at[key]
                due.append(key)
        return due

    def first(self) -> datetime | None:
        """The earliest live time (stale entries at the top are dropped on the way)."""
        heap = self._heap
        while heap and self._at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        """Live keys."""
        return len(self._at)

    @property
    def stored(self) -> int:
        """Heap entries, live and stale: what the agenda costs in memory."""
        return len(self._heap)


def sources_of(tick_id: str, prefix: str) -> int | None:
    """The source partition of a progress announcement ``<prefix>/<n>``; None for any other tick."""
    head, _, tail = tick_id.partition("/")
    return int(tail) if head == prefix and tail.isdigit() else None
