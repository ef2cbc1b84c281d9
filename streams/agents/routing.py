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
from faust.types import EventT, StreamT

from schemas.codec import Codec
from schemas.event import Event
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams.agents.common import as_message, raw_topic
from streams.agents.sla import TableClocks
from streams.agents.staging import Batcher
from streams.domain.clock import Progress
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
    n = settings.partitions

    def batcher() -> Batcher:
        return Batcher(codec, settings.agent_batch_max, settings.agent_batch_within_ms)

    def accepted(event: Any) -> Event | None:
        # Poison is the projector's to dead-letter; here it is simply not routed.
        outcome = classify(codec, limits, as_message(event))
        return outcome.event if isinstance(outcome, Accepted) else None

    triaging = batcher()
    progress = _progress(app, triaging, settings)

    async def triage_one(event: EventT[bytes]) -> None:
        alarm_event = accepted(event)
        if alarm_event is None:
            return
        tick = progress.on_record(event.message.partition, alarm_event, as_message(event).timestamp)
        if alarm_event.type == "ClockTicked":
            if tick is not None:
                for target in range(n):
                    await triaging.outbox.send(routing, tick, partition=target)
            return
        phone = alarm_event.fields.get("caller_phone")
        alarm = Alarm.from_fields(alarm_event.fields, redactor.token(phone) if phone else None)
        decision, location = decide(alarm, district)
        triaged = triaged_event(alarm, decision, location)
        await triaging.outbox.send(case_events, triaged)
        if decision.disposition == Disposition.NON_POLICE and location.street_code is not None:
            await triaging.outbox.send(routing, triaged, key=location.street_code)

    @app.agent(alarms, name="triage")
    async def triage(stream: StreamT[bytes]) -> None:
        await triaging.run(stream, triage_one)

    # street\tcase -> assignee ('' for the command room); street\tmember -> open cases
    dispatching = batcher()
    book = DispatchBook(
        district,
        dispatching.table(app.Table("dispatch-holders", default=None, key_type=str, value_type=str, partitions=n)),
        dispatching.table(app.Table("dispatch-load", default=int, key_type=str, value_type=int, partitions=n)),
    )

    async def dispatch_one(event: EventT[bytes]) -> None:
        routed = codec.decode(event.value or b"")  # internal topic: written only by our own agents
        if routed.type == "AlarmTriaged":
            dispatch = book.decide(routed.fields)
            if dispatch is not None:
                await dispatching.outbox.send(case_events, dispatch.event)
                book.record(dispatch)
        elif routed.type == "AssignmentReleased":
            book.on_released(routed.fields)
        elif routed.type == "CaseReassigned":
            book.on_reassigned(routed.fields)

    @app.agent(routing, name="dispatch")
    async def dispatch(stream: StreamT[bytes]) -> None:
        await dispatching.run(stream, dispatch_one)

    # case -> street\tassignee, on the case-events partitioning
    releasing = batcher()
    tracker = ReleaseTracker(
        releasing.table(app.Table("case-assignments", default=None, key_type=str, value_type=str, partitions=n))
    )

    async def release_one(event: EventT[bytes]) -> None:
        lifecycle = accepted(event)
        released = tracker.on_event(lifecycle) if lifecycle is not None else None
        if released is not None:
            await releasing.outbox.send(routing, released, key=released.fields["street_code"])
            tracker.forget(released)

    @app.agent(case_events, name="release")
    async def release(stream: StreamT[bytes]) -> None:
        await releasing.run(stream, release_one)


def _progress(app: faust.App, batcher: Batcher, settings: Settings) -> Progress:
    """Each alarms partition's watermark, forwarded to every routing partition: the hotspot engine
    releases an alarm once every alarms partition has passed its time (the min of their watermarks)."""
    clocks = app.Table("alarm-clocks", default=None, key_type=str, value_type=None, partitions=settings.partitions)
    progress = Progress(TableClocks(batcher.table(clocks)), timedelta(milliseconds=settings.sla_lateness_ms))

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        progress.forget()

    app.on_partitions_assigned.connect(_rebalanced)
    return progress
