"""One case's state machine: stages, deadlines, breaches, escalation, release, orphans. Pure.

A stage (ACCEPT, CONTACT, ARRIVE) is met at the earliest ``occurred_at`` of an event of that stage
or a later one. A conclusion or close cancels what is not met yet. A stage is breached iff
``min(t_met, t_cancel) > deadline``. That is decided once, when the partition's watermark has
passed the deadline (``watermark > deadline``: an event exactly at the deadline, arriving exactly
the allowed lateness late, still counts), and a breach is reported at most once.

Before that, the command room is warned, from what the log has shown so far. The partition's clock
without the lateness (``watermark + lateness``) passing ``deadline - lead`` (the policy's lead for the
stage) makes an unmet stage at risk (SlaAtRisk); passing the deadline itself makes it overdue
(SlaOverdue). "Unmet" means no event read so far meets or cancels it by that time. Both are provisional:
an event up to the lateness late may still meet the stage in time, and then no breach follows. Each is
decided once per stage, in time order with everything else, so a replay of the log decides the same
ones; and since what is known only grows, a breached stage was always overdue, and an overdue one at risk.

When a dispatched case ends, its assignee's load is given back (AssignmentReleased) once the
watermark passes the end, in time order with the escalations, so the holder released is the one a
live run releases however late the dispatch was read. Field events that come before their case's
dispatch wait in the case (``held``) until it comes; an AlarmTriaged that says the case is police
or review work releases them untracked. If the dispatch stage has passed their time and neither
came, they are orphans (``orphans``).

``apply`` folds one event into the case; ``advance`` decides everything due by a watermark. Both
return the new case and the events to publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.event import Event
from streams.domain.district import District
from streams.domain.outcomes import CaseKey, Mark, count_conclusion
from streams.domain.routing import WORKER_SOURCE, derived_id

STAGES = ("ACCEPT", "CONTACT", "ARRIVE")
WARNINGS = ("SlaAtRisk", "SlaOverdue")  # in the order a stage gets them: Case.alerted counts them off
STAGE_OF = {"InstructionAccepted": 0, "PartyContacted": 1, "ResponderArrived": 2}
DEADLINE_FIELDS = ("accept_by", "contact_by", "arrive_by")
# A conclusion or a close ends a case: it frees the assignee and cancels unmet SLA stages.
TERMINAL = frozenset({"MediationConcluded", "CaseClosed"})
FIELD_TYPES = frozenset({*STAGE_OF, *TERMINAL})
MS = timedelta(milliseconds=1)
Leads = tuple[timedelta, ...]  # per stage, how long before its deadline it is at risk (SlaPolicy.lead_times)


@dataclass(frozen=True)
class SlaTiming:
    """How the engine treats time: lateness, escalation window, retention.
    (The deadlines themselves come from the district's SlaPolicy.)"""

    lateness: timedelta = timedelta(seconds=60)
    escalation_window: timedelta = timedelta(seconds=60)
    retention: timedelta = timedelta(hours=72)  # how long a quiet, settled case is remembered


@dataclass(frozen=True)
class Held:
    """A field event that arrived before its case's dispatch, with what a dead letter needs."""

    event: Event
    origin: tuple[str, int, int]
    key: bytes | None
    value: bytes
    appended_at: datetime  # the broker's append time: its alarm was appended before it (within the lateness)


@dataclass(frozen=True)
class Assignment:
    street: str
    grid: str | None
    team: str
    level: str
    assignee: str | None
    tried: tuple[str, ...]
    escalate_at: datetime | None  # end of the current acceptance window; None once at the command room
    step: int = 0


@dataclass(frozen=True)
class Case:
    case_id: str
    tracked: bool | None = None  # None: unknown yet; False: police or review, no SLA
    deadlines: tuple[datetime, ...] | None = None
    assignment: Assignment | None = None
    met: tuple[datetime | None, ...] = (None, None, None)
    cancelled_at: datetime | None = None
    decided: tuple[bool, ...] = (False, False, False)
    last_at: datetime | None = None  # the latest event time seen for the case
    seen: frozenset[str] = frozenset()
    held: tuple[Held, ...] = field(default=())
    category: str | None = None  # from the dispatch: what the outcome counts under
    dispatched_at: datetime | None = None
    counted: Mark | None = None  # the conclusion that counts for the outcome statistics
    sla_rule: str | None = None  # the policy rule that set the deadlines (from the dispatch)
    released: bool = False  # the assignee's load was given back (AssignmentReleased sent)
    alerted: tuple[int, ...] = (0, 0, 0)  # per stage, how many of its WARNINGS have been decided

    def pending(self, timing: SlaTiming, leads: Leads) -> list[datetime]:
        """Watermarks at which something is still to be decided: warnings, deadlines, the end of an acceptance
        window, and the release of the assignee when the case ended (decided in time order with the
        escalations, so the holder released is the one of a live run, however late the dispatch was read)."""
        due: list[datetime] = []
        if self.deadlines is not None:
            for i, deadline in enumerate(self.deadlines):
                if self.decided[i]:
                    continue
                due.append(deadline)
                warning = self.warning(i, leads)
                if warning is not None:
                    due.append(warning[1] - timing.lateness)  # the clock without the lateness passes it
        a = self.assignment
        if a is not None:
            if a.escalate_at is not None:
                due.append(a.escalate_at)
            if self.cancelled_at is not None and not self.released:
                due.append(self.cancelled_at)
        return due

    def warning(self, i: int, leads: Leads) -> tuple[str, datetime] | None:
        """Stage ``i``'s next warning still to decide, and the event time it is about; None when none is left."""
        if self.deadlines is None or self.decided[i] or self.alerted[i] >= len(WARNINGS):
            return None
        kind = WARNINGS[self.alerted[i]]
        return kind, self.deadlines[i] - leads[i] if kind == "SlaAtRisk" else self.deadlines[i]

    def next_due(self, timing: SlaTiming, leads: Leads) -> datetime | None:
        """When ``advance`` next has work: a decision, or forgetting a settled case (so state stays bounded)."""
        due = self.pending(timing, leads)
        if not due and not self.held and self.last_at is not None:
            due.append(self.last_at + timing.retention)
        return min(due) if due else None

    def expired(self, watermark: datetime, timing: SlaTiming, leads: Leads) -> bool:
        """Nothing left to decide and quiet for the retention period: forget it."""
        return (
            not self.pending(timing, leads)
            and not self.held
            and self.last_at is not None
            and watermark > self.last_at + timing.retention
        )

    @property
    def oldest_held(self) -> datetime | None:
        return min((h.event.occurred_at for h in self.held), default=None)


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else min(a, b)


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)


def apply(case: Case, event: Event, held: Held) -> tuple[Case, list[Event]]:
    """Fold one event (AlarmTriaged, CaseDispatched, CaseReassigned or a field event) into the case."""
    if event.event_id in case.seen:
        return case, []  # an upstream duplicate is a fact about the source, not a new event
    case = replace(case, seen=case.seen | {event.event_id}, last_at=_max(case.last_at, event.occurred_at))
    f = event.fields
    if event.type == "AlarmTriaged":
        if case.tracked is not None:
            return case, []
        if f["disposition"] == "NON_POLICE":
            return replace(case, tracked=True), []
        return _untracked(case)
    if event.type == "CaseDispatched":
        return _dispatched(case, f)
    if event.type == "CaseReassigned":
        return case, []  # our own escalation, already folded in when we decided it
    if case.deadlines is None and case.tracked is not False:
        return replace(case, held=(*case.held, held)), []
    return _lifecycle(case, event)


def _untracked(case: Case) -> tuple[Case, list[Event]]:
    """Police or review work: no SLA, and the field events that waited for a dispatch are accepted as they are."""
    case = replace(case, tracked=False)
    for h in _in_order(case.held):
        case, _ = _lifecycle(case, h.event)
    return replace(case, held=()), []


def _in_order(held: tuple[Held, ...]) -> list[Held]:
    return sorted(held, key=lambda h: (h.event.occurred_at, h.event.event_id))


def _dispatched(case: Case, f: Mapping[str, Any]) -> tuple[Case, list[Event]]:
    if case.deadlines is not None:
        return case, []
    deadlines = tuple(f[k] for k in DEADLINE_FIELDS)
    assignee = f["assignee_id"]
    assignment = Assignment(
        f["street_code"],
        f["grid_code"],
        f["team"],
        f["level"],
        assignee,
        (assignee,) if assignee else (),
        None if f["level"] == "COMMAND_ROOM" else deadlines[0],
    )
    case = replace(
        case,
        tracked=True,
        deadlines=deadlines,
        assignment=assignment,
        category=f["category"],
        dispatched_at=f["occurred_at"],
        sla_rule=f.get("sla_rule"),
    )
    out: list[Event] = []
    for h in _in_order(case.held):
        case, events = _lifecycle(case, h.event)
        out += events
    return replace(case, held=()), out


def _lifecycle(case: Case, event: Event) -> tuple[Case, list[Event]]:
    at = event.occurred_at
    if event.type in STAGE_OF:
        stage = STAGE_OF[event.type]
        met = tuple(_min(m, at) if i <= stage else m for i, m in enumerate(case.met))
        return replace(case, met=met), []
    if event.type in TERMINAL:
        case = replace(case, cancelled_at=_min(case.cancelled_at, at))
        return _count(case, event) if event.type == "MediationConcluded" else (case, [])
    return case, []


def _release(case: Case, a: Assignment, ended: datetime) -> tuple[Case, list[Event]]:
    """The case ended (its first conclusion or close): its holder's open-case load goes back, once."""
    return replace(case, released=True), [
        Event(
            "AssignmentReleased",
            {
                "event_id": derived_id(case.case_id, "AssignmentReleased"),
                "occurred_at": ended,
                "source": WORKER_SOURCE,
                "case_id": case.case_id,
                "street_code": a.street,
                "assignee_id": a.assignee,
            },
        )
    ]


def _count(case: Case, conclusion: Event) -> tuple[Case, list[Event]]:
    """A dispatched case's conclusion feeds the outcome statistics (police and review cases have none)."""
    a = case.assignment
    if a is None or case.category is None or case.dispatched_at is None:
        return case, []
    key = CaseKey(a.street, a.grid, case.category, a.team, case.dispatched_at)
    counted, out = count_conclusion(key, case.counted, conclusion)
    return replace(case, counted=counted), out


def orphans(case: Case, event_ids: set[str], lateness: timedelta) -> tuple[Case, list[Event]]:
    """These held events are orphans: the dispatch stage has passed their time and has read every alarm appended
    up to the lateness after them, and their case's dispatch has not come (the engine decides when). Dead letters."""
    gone = [h for h in case.held if h.event.event_id in event_ids]
    if not gone or case.tracked is False:
        return case, []
    kept = tuple(h for h in case.held if h not in gone)
    return replace(case, held=kept), [_orphan(h, lateness) for h in gone]


def advance(case: Case, watermark: datetime, timing: SlaTiming, district: District) -> tuple[Case, list[Event]]:
    """Decide every warning, deadline and escalation that the watermark has passed, in time order."""
    out: list[Event] = []
    leads = district.sla.lead_times
    while True:
        due = [d for d in case.pending(timing, leads) if d < watermark]
        if not due:
            return case, out
        case, events = _step(case, min(due), timing, district)
        out += events


def _step(case: Case, due: datetime, timing: SlaTiming, district: District) -> tuple[Case, list[Event]]:
    a = case.assignment
    if case.deadlines is not None:
        leads = district.sla.lead_times
        for i in range(len(STAGES)):  # at one time, warnings come before breaches
            warning = case.warning(i, leads)
            if warning is not None and warning[1] - timing.lateness <= due:
                alerted = tuple(n + 1 if j == i else n for j, n in enumerate(case.alerted))
                return replace(case, alerted=alerted), _warn(case, i, *warning)
        for i, deadline in enumerate(case.deadlines):
            if not case.decided[i] and deadline <= due:
                decided = tuple(d or j == i for j, d in enumerate(case.decided))
                return replace(case, decided=decided), _breach(case, i, timing)
    if a is not None and case.cancelled_at is not None and not case.released and case.cancelled_at <= due:
        return _release(case, a, case.cancelled_at)
    if a is not None and a.escalate_at is not None and a.escalate_at <= due:
        return _escalate(case, a, timing, district)
    raise AssertionError(f"nothing due at {due} for {case.case_id}")  # pending() said there was


def _breach(case: Case, i: int, timing: SlaTiming) -> list[Event]:
    assert case.deadlines is not None and case.assignment is not None
    deadline, met = case.deadlines[i], case.met[i]
    settled = [t for t in (met, case.cancelled_at) if t is not None]
    if settled and min(settled) <= deadline:
        return []
    a = case.assignment
    return [
        Event(
            "SlaBreached",
            {
                "event_id": derived_id(case.case_id, f"SlaBreached/{STAGES[i]}"),
                "occurred_at": deadline + MS,
                "source": WORKER_SOURCE,
                "case_id": case.case_id,
                "stage": STAGES[i],
                "deadline": deadline,
                "street_code": a.street,
                "grid_code": a.grid,
                "team": a.team,
                "assignee_id": a.assignee,
                # Only a met time within the lateness horizon is sure to be known whenever the breach is
                # decided (live, replay or backfill); a later one is left null and shows in the cases view.
                "late_by_ms": None if met is None or met > deadline + timing.lateness else int((met - deadline) / MS),
                "sla_rule": case.sla_rule,
            },
        )
    ]


def _warn(case: Case, i: int, kind: str, at: datetime) -> list[Event]:
    """The clock has passed ``at`` (the deadline less its lead, or the deadline): unless what the log has shown
    so far meets or cancels the stage by then, warn the command room."""
    assert case.deadlines is not None and case.assignment is not None
    settled = [t for t in (case.met[i], case.cancelled_at) if t is not None]
    if settled and min(settled) <= at:
        return []
    a, deadline = case.assignment, case.deadlines[i]
    fields: dict[str, Any] = {
        "event_id": derived_id(case.case_id, f"{kind}/{STAGES[i]}"),
        "occurred_at": at + MS,
        "source": WORKER_SOURCE,
        "case_id": case.case_id,
        "stage": STAGES[i],
        "deadline": deadline,
        "street_code": a.street,
        "grid_code": a.grid,
        "team": a.team,
        "assignee_id": a.assignee,
        "sla_rule": case.sla_rule,
    }
    if kind == "SlaAtRisk":
        fields["lead_ms"] = int((deadline - at) / MS)
    return [Event(kind, fields)]


def _escalate(case: Case, a: Assignment, timing: SlaTiming, district: District) -> tuple[Case, list[Event]]:
    """The acceptance window ended: unless someone accepted (or the case ended) in time, go one level up."""
    window_end = a.escalate_at
    assert window_end is not None
    settled = [t for t in (case.met[0], case.cancelled_at) if t is not None]
    if settled and min(settled) <= window_end:
        return replace(case, assignment=replace(a, escalate_at=None)), []
    level, assignee = _next_level(a, window_end, district)
    moved = replace(
        a,
        level=level,
        assignee=assignee,
        tried=(*a.tried, assignee) if assignee else a.tried,
        escalate_at=None if level == "COMMAND_ROOM" else window_end + timing.escalation_window,
        step=a.step + 1,
    )
    reassigned = Event(
        "CaseReassigned",
        {
            "event_id": derived_id(case.case_id, f"CaseReassigned/{moved.step}"),
            "occurred_at": window_end + MS,
            "source": WORKER_SOURCE,
            "case_id": case.case_id,
            "street_code": a.street,
            "team": a.team,
            "from_assignee": a.assignee,
            "to_assignee": assignee,
            "level": level,
            "step": moved.step,
            "reason": f"not accepted within the window ending {window_end.isoformat()}",
        },
    )
    return replace(case, assignment=moved), [reassigned]


def _next_level(a: Assignment, at: datetime, district: District) -> tuple[str, str | None]:
    """The next on-duty member of the force in the grid, then the street's pool, then the command room."""
    if a.level == "GRID":
        for grid, level in ((a.grid, "GRID"), (None, "STREET_POOL")):
            if level == "GRID" and grid is None:
                continue
            for m in district.on_duty(a.team, a.street, grid, at):
                if m.member_id not in a.tried:
                    return level, m.member_id
    return "COMMAND_ROOM", None


def _orphan(h: Held, lateness: timedelta) -> Event:
    topic, partition, offset = h.origin
    origin = f"{topic}/{partition}/{offset}"
    return Event(
        "DeadLettered",
        {
            "event_id": derived_id(origin, "Orphan"),
            "occurred_at": h.event.occurred_at,
            "source": WORKER_SOURCE,
            "origin": origin,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "source_key": h.key,
            "error_class": "Orphan",
            "reason": f"{h.event.type} for case {h.event.fields['case_id']!r}: no dispatch or triage for it, though "
            f"every alarm up to {(h.event.occurred_at + lateness).isoformat()} and every one appended up to "
            f"{(h.appended_at + lateness).isoformat()} has been routed (an unknown case, or one settled and "
            "forgotten after the retention)",
            "payload": h.value,
        },
    )
