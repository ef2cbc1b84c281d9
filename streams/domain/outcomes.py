"""Mediation outcomes: which conclusion of a case counts, and the daily aggregate it counts in. Pure.

Two folds, on two partitionings:

1. Per case (on the case-events partition, inside the case engine): a case counts once, with its
   *latest* conclusion, ordered by ``(occurred_at, event_id)``. A correction from the field moves
   the case's contribution; if it moves to another local day, the old day gets a retraction.
   Each change is an ``OutcomeCounted`` event keyed by the aggregate it belongs to.
2. Per aggregate key (street, grid, category, force, local day in Asia/Shanghai): a map
   case → contribution where the contribution with the greater mark wins, and a retraction is a
   tombstone with the mark of the conclusion that superseded it. That makes the fold
   order-independent and idempotent: any order or repetition of the same ``OutcomeCounted``
   events gives the same aggregate.

success rate = success / (concluded − NO_ACTION_NEEDED), success = the configured success outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sortedcontainers import SortedList

from schemas.event import Event, from_millis, to_millis
from streams.domain.routing import WORKER_SOURCE, derived_id

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
OUTCOMES = ("RESOLVED", "REFERRED", "ESCALATED_TO_POLICE", "UNRESOLVED", "NO_ACTION_NEEDED")
NO_ACTION = "NO_ACTION_NEEDED"
DEFAULT_SUCCESS = frozenset({"RESOLVED"})
ZERO = Decimal("0.00")

Mark = tuple[datetime, str]  # a conclusion's (occurred_at, event_id): the later mark is the one that counts


def local_day(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


@dataclass(frozen=True)
class CaseKey:
    """What a case is counted under, from its dispatch."""

    street: str
    grid: str | None
    category: str
    team: str
    dispatched_at: datetime

    def stats_key(self, day: date) -> str:
        return "|".join((self.street, self.grid or "", self.category, self.team, day.isoformat()))


def count_conclusion(key: CaseKey, counted: Mark | None, conclusion: Event) -> tuple[Mark | None, list[Event]]:
    """Fold one MediationConcluded into the case: the new counted mark and the OutcomeCounted events."""
    f = conclusion.fields
    mark: Mark = (conclusion.occurred_at, conclusion.event_id)
    if counted is not None and mark <= counted:
        return counted, []  # an earlier conclusion than the one that counts, or the same again
    day = local_day(mark[0])
    out = []
    if counted is not None and local_day(counted[0]) != day:
        out.append(_counted(key, local_day(counted[0]), conclusion, mark, counts=False))
    duration = max(mark[0] - key.dispatched_at, timedelta(0))
    out.append(
        _counted(
            key,
            day,
            conclusion,
            mark,
            counts=True,
            outcome=f["outcome"],
            compensation=f.get("compensation"),
            duration_ms=int(duration / timedelta(milliseconds=1)),
        )
    )
    return mark, out


def _counted(
    key: CaseKey,
    day: date,
    conclusion: Event,
    mark: Mark,
    *,
    counts: bool,
    outcome: str | None = None,
    compensation: Decimal | None = None,
    duration_ms: int | None = None,
) -> Event:
    stats_key = key.stats_key(day)
    return Event(
        "OutcomeCounted",
        {
            "event_id": derived_id(conclusion.event_id, f"OutcomeCounted/{stats_key}"),
            "occurred_at": mark[0],
            "source": WORKER_SOURCE,
            "stats_key": stats_key,
            "case_id": conclusion.fields["case_id"],
            "street_code": key.street,
            "grid_code": key.grid,
            "category": key.category,
            "team": key.team,
            "local_day": day.isoformat(),
            "counts": counts,
            "conclusion_id": mark[1],
            "outcome": outcome,
            "compensation": compensation,
            "duration_ms": duration_ms,
        },
    )


@dataclass(frozen=True)
class Contribution:
    """One case's part in an aggregate; ``counts`` False is a tombstone (the case moved to another day)."""

    mark: Mark
    counts: bool
    outcome: str | None = None
    compensation: Decimal | None = None
    duration_ms: int | None = None

    @classmethod
    def of(cls, f: Mapping[str, Any]) -> Contribution:
        return cls(
            (f["occurred_at"], f["conclusion_id"]), f["counts"], f["outcome"], f["compensation"], f["duration_ms"]
        )


class DailyOutcome:
    """The aggregate for one key: each case's contribution (the latest mark wins, which makes any order or
    repetition of the inputs give the same aggregate), running totals kept with every change, and a version that
    grows with every change. A change costs O(log n), not O(cases of the day).

    A change's version is given by the caller from the log (the engine passes its record's offset + 1), not
    counted here: a batch read again after a crash that logged only some of its cases then numbers each change
    as the first time, since a case logged with its final value changes nothing when read again."""

    __slots__ = ("by_outcome", "cases", "compensation", "duration_sum", "durations", "key", "version", "versions")

    def __init__(
        self,
        key: Mapping[str, Any],
        cases: Mapping[str, Contribution] | None = None,
        version: int = 0,
        versions: Mapping[str, int] | None = None,
    ) -> None:
        self.key = dict(key)  # stats_key, street_code, grid_code, category, team, local_day
        self.cases: dict[str, Contribution] = {}
        # the version each case's contribution was set at, stored with it
        self.versions: dict[str, int] = dict(versions or {})
        self.version = max([version, *self.versions.values()])
        self.by_outcome: dict[str, int] = {}
        self.compensation = ZERO
        self.durations = SortedList()  # counted cases' dispatch-to-conclusion times, kept sorted for quantiles
        self.duration_sum = 0
        for case, c in (cases or {}).items():
            self.cases[case] = c
            self._count(c, 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DailyOutcome) and (self.key, self.cases, self.version) == (
            other.key,
            other.cases,
            other.version,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def apply(self, counted: Mapping[str, Any], version: int) -> bool:
        """Fold one OutcomeCounted as change ``version``; False when it changes nothing (a repeat, or older than
        what counts)."""
        new = Contribution.of(counted)
        case = counted["case_id"]
        old = self.cases.get(case)
        if old is not None:
            if old.mark >= new.mark:
                return False
            self._count(old, -1)
        self.cases[case] = new
        self._count(new, 1)
        self.version = version
        self.versions[case] = version
        return True

    def _count(self, c: Contribution, sign: int) -> None:
        if not c.counts:
            return  # a tombstone: the case moved to another day
        outcome = str(c.outcome)
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + sign
        if c.compensation is not None:
            self.compensation += sign * c.compensation
        if c.duration_ms is not None:
            if sign > 0:
                self.durations.add(c.duration_ms)
            else:
                self.durations.remove(c.duration_ms)
            self.duration_sum += sign * c.duration_ms

    @property
    def concluded(self) -> int:
        return sum(self.by_outcome.values())

    def stats_event(self, success: Iterable[str], at: datetime) -> Event:
        """The aggregate as OutcomeStatsUpdated; ``at`` is the event time of the change that made it."""
        success = frozenset(success)
        return Event(
            "OutcomeStatsUpdated",
            {
                "event_id": derived_id(self.key["stats_key"], f"OutcomeStatsUpdated/{self.version}"),
                "occurred_at": at,
                "source": WORKER_SOURCE,
                **self.key,
                "version": self.version,
                "concluded": self.concluded,
                "success": sum(n for o, n in self.by_outcome.items() if o in success),
                **{o.lower(): self.by_outcome.get(o, 0) for o in OUTCOMES},
                "success_outcomes": sorted(success),
                "compensation": self.compensation,
                "duration_sum_ms": self.duration_sum,
                "p50_ms": nearest_rank(self.durations, 0.5),
                "p90_ms": nearest_rank(self.durations, 0.9),
            },
        )


def nearest_rank(ordered: Sequence[int], q: float) -> int | None:
    """The nearest-rank quantile of sorted values: the ceil(q·n)-th smallest (an observed value, never an
    interpolation), with q in per mille in integer arithmetic, as SQL's alarmflow_nearest_rank."""
    if not ordered:
        return None
    rank = max(1, -(-int(q * 1000) * len(ordered) // 1000))  # ceil(q·n) in integers
    return ordered[rank - 1]


def success_rate(success: int, concluded: int, no_action: int) -> float | None:
    """success / (concluded − NO_ACTION_NEEDED); None when nothing counts."""
    base = concluded - no_action
    return None if base <= 0 else success / base


def contribution_to_list(c: Contribution, version: int) -> list[Any]:
    """One case's contribution as JSON for a state table (mark as epoch ms, decimal as a string), with the
    aggregate version it was set at."""
    compensation = None if c.compensation is None else str(c.compensation)
    return [to_millis(c.mark[0]), c.mark[1], c.counts, c.outcome, compensation, c.duration_ms, version]


def contribution_from_list(v: Sequence[Any]) -> tuple[Contribution, int | None]:
    """A contribution and its version (None in state written before contributions were stored apart)."""
    compensation = None if v[4] is None else Decimal(v[4])
    return Contribution((from_millis(v[0]), v[1]), v[2], v[3], compensation, v[5]), (v[6] if len(v) > 6 else None)


def outcome_from_dict(d: Mapping[str, Any]) -> DailyOutcome:
    """An aggregate stored whole (state written before 2026-11-30): its cases all take its version."""
    cases = {case: contribution_from_list(v)[0] for case, v in d["cases"].items()}
    return DailyOutcome(d["key"], cases, d["version"], {case: d["version"] for case in cases})


def day_end(day: date) -> datetime:
    """The first instant after a local day (Asia/Shanghai), in that zone."""
    return datetime.combine(day + timedelta(days=1), time(0), LOCAL_TZ)
