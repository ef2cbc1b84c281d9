"""Routing agents: triage every alarm, dispatch every non-police case, keep each street's open-case counts.

Topology (all keys in brackets):
  alarms [alarm_id] ──triage──► case-events [case_id]: AlarmTriaged
                          └───► routing [street]: AlarmTriaged (NON_POLICE only)
  routing [street] ──dispatch──► case-events [case_id]: CaseDispatched      (tables: holders, load)
  case-events [case_id] ──release──► routing [street]: AssignmentReleased   (table: assignments)
Open-case counts change only on the street's routing partition, so one worker owns them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust
from faust.types import StreamT

from schemas.codec import Codec
from schemas.event import Event
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams.agents.common import as_message, raw_topic
from streams.agents.sla import TableClocks
from streams.domain.clock import Progress, tick_key
from streams.domain.dispatch import DispatchBook, ReleaseTracker
from streams.domain.district import Disposition, District
from streams.domain.routing import Alarm, decide, triaged_event
from streams.ingest import Accepted, classify
from streams.settings import Settings


def register(
    app: faust.App, settings: Settings, codec: Codec, district: District, redactor: Redactor, limits: Limits
) -> None:
    alarms = raw_topic(app, settings.topic("alarms"))
    case_events = raw_topic(app, settings.topic("case-events"))
    routing = raw_topic(app, settings.topic("routing"))
    # street\tcase -> assignee ('' for the command room); street\tmember -> open cases
    holders = app.Table("dispatch-holders", default=None, key_type=str, value_type=str, partitions=settings.partitions)
    load = app.Table("dispatch-load", default=int, key_type=str, value_type=int, partitions=settings.partitions)
    # case -> street\tassignee, on the case-events partitioning
    assignments = app.Table(
        "case-assignments", default=None, key_type=str, value_type=str, partitions=settings.partitions
    )

    book, tracker, progress = (
        DispatchBook(district, holders, load),
        ReleaseTracker(assignments),
        _progress(app, settings),
    )

    async def send(topic: Any, key: str, event: Event) -> None:
        await topic.send(key=key.encode(), value=codec.encode(event))

    async def publish_now(topic: Any, key: str, event: Event) -> None:
        """Published and acknowledged before the table changes that depend on it.

        Table changelogs go out as soon as they are written, not at commit, so a send attached
        to the commit could be lost behind a state change that already happened.
        """
        sent = await topic.send(key=key.encode(), value=codec.encode(event), force=True)
        await sent

    def accepted(event: Any) -> Event | None:
        # Poison is the projector's to dead-letter; here it is simply not routed.
        outcome = classify(codec, limits, as_message(event))
        return outcome.event if isinstance(outcome, Accepted) else None

    @app.agent(alarms, name="triage")
    async def triage(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            alarm_event = accepted(event)
            if alarm_event is None:
                continue
            tick = progress.on_record(event.message.partition, alarm_event, as_message(event).timestamp)
            if alarm_event.type == "ClockTicked":
                if tick is not None:
                    for target in range(settings.partitions):
                        await routing.send(key=tick_key(tick), value=codec.encode(tick), partition=target)
                continue
            phone = alarm_event.fields.get("caller_phone")
            alarm = Alarm.from_fields(alarm_event.fields, redactor.token(phone) if phone else None)
            decision, location = decide(alarm, district)
            triaged = triaged_event(alarm, decision, location)
            await send(case_events, alarm.alarm_id, triaged)
            if decision.disposition == Disposition.NON_POLICE and location.street_code is not None:
                await send(routing, location.street_code, triaged)

    @app.agent(routing, name="dispatch")
    async def dispatch(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            routed = codec.decode(event.value or b"")  # internal topic: written only by our own agents
            if routed.type == "AlarmTriaged":
                dispatch = book.decide(routed.fields)
                if dispatch is not None:
                    await publish_now(case_events, dispatch.case, dispatch.event)
                    book.record(dispatch)
            elif routed.type == "AssignmentReleased":
                book.on_released(routed.fields)
            elif routed.type == "CaseReassigned":
                book.on_reassigned(routed.fields)

    @app.agent(case_events, name="release")
    async def release(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            lifecycle = accepted(event)
            released = tracker.on_event(lifecycle) if lifecycle is not None else None
            if released is not None:
                await publish_now(routing, released.fields["street_code"], released)
                tracker.forget(released)


def _progress(app: faust.App, settings: Settings) -> Progress:
    """Each alarms partition's watermark, forwarded to every routing partition: the hotspot engine
    releases an alarm once every alarms partition has passed its time (the min of their watermarks)."""
    clocks = app.Table("alarm-clocks", default=None, key_type=str, value_type=None, partitions=settings.partitions)
    progress = Progress(TableClocks(clocks), timedelta(milliseconds=settings.sla_lateness_ms))

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        progress.forget()

    app.on_partitions_assigned.connect(_rebalanced)
    return progress
