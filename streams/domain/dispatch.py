"""Who gets a case, and the open-case load that decides it. Pure; the state lives in mappings the caller owns.

In the worker the mappings are Faust tables partitioned by street, so one worker owns a street's
load; in tests they are dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from schemas.event import Event
from streams.domain.district import District
from streams.domain.routing import WORKER_SOURCE, assign, derived_id, dispatched_event, team_for

# A conclusion or a close ends a case: it frees the assignee and cancels unmet SLA stages.
TERMINAL = frozenset({"MediationConcluded", "CaseClosed"})
RELEASED = "\x00released"  # the holder of a case that was dispatched and has ended


def _key(*parts: str) -> str:
    return "\t".join(parts)


@dataclass(frozen=True)
class Dispatch:
    """A decided dispatch: the event to publish, then the state to record once it is published."""

    event: Event
    street: str
    case: str
    assignee: str | None


class DispatchBook:
    """Dispatches triaged non-police alarms and keeps each member's open-case count.

    ``holders``: street⇥case → assignee ('' for the command room) while the case is open, RELEASED after.
    ``load``: street⇥member → open cases.
    Deciding reads the state; recording changes it. The caller publishes in between, so a crash
    can repeat a dispatch (same event id, same choice) but never lose one.
    """

    def __init__(self, district: District, holders: MutableMapping[str, Any], load: MutableMapping[str, Any]) -> None:
        self.district, self.holders, self.load = district, holders, load

    def open_cases(self, street: str, member: str) -> int:
        return int(self.load.get(_key(street, member)) or 0)

    def decide(self, triaged: Mapping[str, Any]) -> Dispatch | None:
        """The dispatch for a case not dispatched yet; None for a re-delivery."""
        street, case = triaged["street_code"], triaged["case_id"]
        if _key(street, case) in self.holders:
            return None
        team = team_for(triaged, self.district)
        chosen = assign(
            self.district,
            team,
            street,
            triaged["grid_code"],
            triaged["occurred_at"],
            lambda member: self.open_cases(street, member),
        )
        return Dispatch(dispatched_event(triaged, chosen, self.district), street, case, chosen.assignee_id)

    def record(self, dispatch: Dispatch) -> None:
        self.holders[_key(dispatch.street, dispatch.case)] = dispatch.assignee or ""
        if dispatch.assignee:
            key = _key(dispatch.street, dispatch.assignee)
            self.load[key] = self.open_cases(dispatch.street, dispatch.assignee) + 1

    def on_reassigned(self, reassigned: Mapping[str, Any]) -> None:
        """An escalation moved the case: its load moves from the old holder to the new one."""
        street, case = reassigned["street_code"], reassigned["case_id"]
        if self.holders.get(_key(street, case)) in (None, RELEASED):
            return
        old, new = self.holders[_key(street, case)], reassigned["to_assignee"] or ""
        if old == new:
            return
        if old:
            self.load[_key(street, old)] = max(0, self.open_cases(street, old) - 1)
        if new:
            self.load[_key(street, new)] = self.open_cases(street, new) + 1
        self.holders[_key(street, case)] = new

    def on_released(self, released: Mapping[str, Any]) -> None:
        """The case left its assignee's load; a repeated release changes nothing."""
        street, case = released["street_code"], released["case_id"]
        member = self.holders.get(_key(street, case))
        if member in (None, RELEASED):
            return
        # Kept as released, not forgotten: a re-delivered alarm of a closed case must not dispatch it again.
        self.holders[_key(street, case)] = RELEASED
        if member:
            self.load[_key(street, member)] = max(0, self.open_cases(street, member) - 1)


class ReleaseTracker:
    """Turns the first conclusion or close of a dispatched case into an AssignmentReleased for its street.

    ``assignments``: case → street⇥assignee, on the case-events partitioning.
    """

    def __init__(self, assignments: MutableMapping[str, Any]) -> None:
        self.assignments = assignments

    def on_event(self, event: Event) -> Event | None:
        """Records a dispatch or an escalation (forwarded, so the street's load follows it); for the
        first terminal event returns the release to publish, then call ``forget``."""
        f = event.fields
        if event.type == "CaseDispatched":
            self.assignments[f["case_id"]] = _key(f["street_code"], f["assignee_id"] or "")
            return None
        if event.type == "CaseReassigned" and f["case_id"] in self.assignments:
            self.assignments[f["case_id"]] = _key(f["street_code"], f["to_assignee"] or "")
            return event
        if event.type not in TERMINAL or f["case_id"] not in self.assignments:
            return None
        street, assignee = str(self.assignments[f["case_id"]]).split("\t")
        return Event(
            "AssignmentReleased",
            {
                "event_id": derived_id(event.event_id, "AssignmentReleased"),
                "occurred_at": event.occurred_at,
                "source": WORKER_SOURCE,
                "case_id": f["case_id"],
                "street_code": street,
                "assignee_id": assignee or None,
            },
        )

    def forget(self, released: Event) -> None:
        if released.type == "AssignmentReleased":
            self.assignments.pop(released.fields["case_id"], None)
