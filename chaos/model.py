"""The whole topology in one process, on the pure engines: what an uninterrupted live run decides.

Every upstream event is appended at its publish time, in the order it was published, and every derived
record is processed the moment it is appended; each alarms and case-events partition gets a tick every
second of log time in between. That is the live run a day of real time would give, in a fraction of a
second: the reference the outage and backfill tests, and the fault suite, compare the real pipeline
against. One partition per topic: the decisions are a function of the events, not of the partitioning
(the assignee alone follows the routing log's order).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.event import Event
from streams.domain.case_engine import CaseEngine
from streams.domain.district import District
from streams.domain.engine import Emit, Record
from streams.domain.hotspots import HotspotPolicy
from streams.domain.outcome_engine import OutcomeEngine
from streams.domain.sla import MS, STAGE_OF, STAGES, TERMINAL, SlaTiming
from streams.domain.street_engine import StreetEngine
from streams.domain.triage_engine import TriageEngine

TICK = timedelta(seconds=1)
WARNINGS = ("SlaAtRisk", "SlaOverdue")


@dataclass
class Decisions:
    """What the run published, by topic."""

    published: dict[str, list[Event]] = field(default_factory=dict)

    def of(self, kind: str) -> list[Event]:
        return [e for events in self.published.values() for e in events if e.type == kind]

    def breaches(self) -> set[tuple[str, str, datetime]]:
        return {(e.fields["case_id"], e.fields["stage"], e.fields["deadline"]) for e in self.of("SlaBreached")}

    def alerts(self) -> set[tuple[str, str, str, datetime]]:
        """Every warning published: (case, stage, SlaAtRisk or SlaOverdue, deadline)."""
        return {
            (e.fields["case_id"], e.fields["stage"], e.type, e.fields["deadline"])
            for kind in WARNINGS
            for e in self.of(kind)
        }

    def certain_alerts(self) -> set[tuple[str, str, str, datetime]]:
        """The warnings every run of these events gives, however its records were timed: those whose stage no
        event meets or cancels by the time the warning is about (its occurred_at less 1 ms).

        A warning on a stage met in time by an event read after the clock had passed that time is provisional:
        whether it comes depends on when the event was read (an outage, a backfill, a slow producer), so no
        comparison of two runs can include it. A certain one comes in every run: what a run has read by then
        meets the stage no earlier than all its events do."""
        settled: dict[tuple[str, int], datetime] = {}
        for e in self.published.get("case-events", []):
            if e.type not in STAGE_OF and e.type not in TERMINAL:
                continue
            reach = STAGE_OF.get(e.type, len(STAGES) - 1)  # a stage's event meets it and those before it
            for i in range(reach + 1):
                key = (e.fields["case_id"], i)
                settled[key] = min(settled.get(key, e.occurred_at), e.occurred_at)
        certain = set()
        for kind in WARNINGS:
            for e in self.of(kind):
                f, about = e.fields, e.occurred_at - MS
                if settled.get((f["case_id"], STAGES.index(f["stage"])), e.occurred_at) > about:
                    certain.add((f["case_id"], f["stage"], kind, f["deadline"]))
        return certain

    def dispatches(self) -> dict[str, tuple[Any, ...]]:
        """case → everything about its dispatch but the assignee (which follows the routing log's order)."""
        keys = ("street_code", "grid_code", "team", "level", "accept_by", "contact_by", "arrive_by", "sla_rule")
        return {e.fields["case_id"]: tuple(e.fields[k] for k in keys) for e in self.of("CaseDispatched")}

    def outcomes(self) -> dict[str, tuple[int, ...]]:
        """stats_key → the latest aggregate's counts (concluded, success, no action, compensation in cents)."""
        latest: dict[str, Event] = {}
        for e in self.of("OutcomeStatsUpdated"):
            key = e.fields["stats_key"]
            if key not in latest or e.fields["version"] > latest[key].fields["version"]:
                latest[key] = e
        return {
            k: (f["concluded"], f["success"], f["no_action_needed"], int(f["compensation"] * 100))
            for k, f in ((k, e.fields) for k, e in latest.items())
            if f["concluded"]
        }

    def episodes(self) -> set[tuple[str, datetime]]:
        return {(e.fields["hotspot_id"], e.fields["episode_started_at"]) for e in self.of("HotspotDetected")}

    def dead_letters(self) -> list[Event]:
        return self.of("DeadLettered")


class Model:
    def __init__(
        self,
        district: District,
        timing: SlaTiming,
        hotspots: HotspotPolicy,
        success: frozenset[str],
        tick: timedelta = TICK,
    ) -> None:
        self.tick = tick
        retention = timing.retention
        self.engines = {
            "alarms": TriageEngine(district, timing.lateness, retention, 1, lambda phone: f"token:{phone}"),
            "routing": StreetEngine(district, hotspots, 1, 1, retention),
            "case-events": CaseEngine(district, timing, 1, 1),
            "outcomes": OutcomeEngine(1, retention, success),
        }
        for engine in self.engines.values():
            engine.load(0, None, [])  # type: ignore[attr-defined]
        self.decisions = Decisions()
        self.now: datetime | None = None
        self.offsets: dict[str, int] = {}

    def live(self, published: Iterable[tuple[Event, datetime]], until: datetime | None = None) -> Decisions:
        """Feed upstream events as published (event, publish time; in publish order), ticking every second in
        between, then keep ticking to ``until``."""
        for event, at in published:
            self._tick_to(at)
            topic = "alarms" if event.type == "AlarmReceived" else "case-events"
            self._run(deque([(topic, event)]), max(at, self.now or at))
        if until is not None:
            self._tick_to(until)
        return self.decisions

    def _tick_to(self, at: datetime) -> None:
        if self.now is None:
            self.now = at
            return
        while self.now + self.tick <= at:
            self.now += self.tick
            for topic in ("alarms", "case-events"):
                self._run(deque([(topic, _tick("tick/0", self.now))]), self.now)
        self.now = max(self.now, at)

    def _run(self, queue: deque[tuple[str, Event]], at: datetime) -> None:
        """Process a record and everything it causes, each derived record the moment it is appended."""
        while queue:
            topic, event = queue.popleft()
            engine = self.engines.get(topic)
            if engine is None:
                self.decisions.published.setdefault(topic, []).append(event)
                continue
            offset = self.offsets.get(topic, 0)
            self.offsets[topic] = offset + 1
            if event.type != "ClockTicked" and topic in ("case-events",):
                self.decisions.published.setdefault(topic, []).append(event)
            emits: list[Emit] = engine.on_record(Record(event, topic, 0, offset, b"", b"", at))  # type: ignore[attr-defined]
            emits += engine.announcements(0)  # type: ignore[attr-defined]
            engine.flush(0)  # type: ignore[attr-defined]
            queue.extend((e.topic, e.event) for e in emits)


def _tick(tick_id: str, at: datetime) -> Event:
    fields = {"event_id": str(uuid.uuid4()), "occurred_at": at, "source": "model", "tick_id": tick_id, "partition": 0}
    return Event("ClockTicked", fields)


def comparable(decisions: Decisions) -> dict[str, Any]:
    """The model's decisions in the shapes chaos.observe.Snapshot reads from ClickHouse (times as ISO strings)."""
    from projections.query import iso

    def norm(v: Any) -> Any:
        return iso(v) if isinstance(v, datetime) else v

    breaches = {
        (f["case_id"], f["stage"], iso(f["deadline"]), f["sla_rule"])
        for f in (e.fields for e in decisions.of("SlaBreached"))
    }
    alerts = {(c, s, kind, iso(d)) for c, s, kind, d in decisions.certain_alerts()}
    keys = ("street_code", "grid_code", "team", "level", "accept_by", "contact_by", "arrive_by", "sla_rule")
    dispatches = {e.fields["case_id"]: tuple(norm(e.fields[k]) for k in keys) for e in decisions.of("CaseDispatched")}
    reassignments = {(f["case_id"], f["step"], f["level"]) for f in (e.fields for e in decisions.of("CaseReassigned"))}
    latest: dict[str, Mapping[str, Any]] = {}
    for e in decisions.of("OutcomeStatsUpdated"):
        f = e.fields
        if f["stats_key"] not in latest or f["version"] > latest[f["stats_key"]]["version"]:
            latest[f["stats_key"]] = f
    outcomes = {
        k: (f["concluded"], f["success"], f["no_action_needed"], str(f["compensation"]), f["duration_sum_ms"])
        for k, f in latest.items()
    }
    by_episode: dict[str, list[dict[str, Any]]] = {}
    for kind in ("HotspotDetected", "HotspotUpdated", "HotspotCooled"):
        for e in decisions.of(kind):
            by_episode.setdefault(e.fields["episode_id"], []).append({**e.fields, "type": kind})
    episodes = set()
    for rows in by_episode.values():
        reports = [r for r in rows if r["type"] != "HotspotCooled"]
        last = max(reports, key=lambda r: (r["occurred_at"], r["count"], r["event_id"]))
        cooled = [r["occurred_at"] for r in rows if r["type"] == "HotspotCooled"]
        episodes.add(
            (
                rows[0]["hotspot_id"],
                iso(min(r["episode_started_at"] for r in rows)),
                max(r["count"] for r in rows),
                last["count"],
                iso(max(cooled)) if cooled else None,
            )
        )
    return {
        "breaches": breaches,
        "alerts": alerts,
        "dispatches": dispatches,
        "reassignments": reassignments,
        "outcomes": outcomes,
        "episodes": episodes,
    }
