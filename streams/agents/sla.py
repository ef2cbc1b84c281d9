"""The SLA agent: one case-events partition at a time, state in Faust tables, time from the log.

Only the worker that owns a case-events partition reads it, so only that worker decides its
breaches. The ticker appends a ClockTicked record to each partition this worker owns (the timer
runs on every worker, but acts on its own assignment only). The tick travels through the
partition like any other record, so the decision it triggers runs inside stream iteration, on
the owner, in log order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.types import EventT, StreamT

from schemas.codec import Codec
from schemas.event import Event
from schemas.validation import Limits
from streams.agents.common import as_message, raw_topic
from streams.agents.sla_state import case_from_dict, case_to_dict
from streams.agents.staging import Batcher
from streams.domain.clock import PartitionClock
from streams.domain.district import District
from streams.domain.routing import WORKER_SOURCE
from streams.domain.sla import Case, SlaTiming
from streams.domain.sla_engine import Record, SlaEngine
from streams.ingest import Accepted, classify
from streams.settings import Settings


def timing_from(settings: Settings) -> SlaTiming:
    return SlaTiming(
        lateness=timedelta(milliseconds=settings.sla_lateness_ms),
        orphan_hold=timedelta(seconds=settings.sla_orphan_hold_s),
        escalation_window=timedelta(seconds=settings.sla_escalation_window_s),
        retention=timedelta(hours=settings.sla_retention_h),
    )


class TableCases:
    """CaseStore on a Faust table of JSON dicts."""

    def __init__(self, table: Any, codec: Codec) -> None:
        self.table, self.codec = table, codec

    def get(self, case_id: str) -> Case | None:
        stored = self.table.get(case_id)
        return None if stored is None else case_from_dict(stored, self.codec)

    def put(self, case: Case) -> None:
        self.table[case.case_id] = case_to_dict(case, self.codec)

    def delete(self, case_id: str) -> None:
        self.table.pop(case_id, None)

    def in_partition(self, partition: int) -> Iterable[Case]:
        # Standby copies of other partitions live in the same store: keep our partition only.
        return [
            case_from_dict(v, self.codec)
            for v in list(self.table.values())
            if v is not None and v["partition"] == partition
        ]


class TableClocks:
    """ClockStore on a Faust table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, partition: int) -> PartitionClock:
        return PartitionClock.from_dict(self.table.get(str(partition)))

    def put(self, partition: int, clock: PartitionClock) -> None:
        self.table[str(partition)] = clock.to_dict()


def register(app: faust.App, settings: Settings, codec: Codec, district: District, limits: Limits) -> None:
    case_events = raw_topic(app, settings.topic("case-events"))
    targets = {
        "SlaBreached": raw_topic(app, settings.topic("sla-breaches")),
        "CaseReassigned": case_events,
        "DeadLettered": raw_topic(app, settings.topic("deadletter")),
        "OutcomeCounted": raw_topic(app, settings.topic("outcomes")),
    }
    n = settings.partitions
    batcher = Batcher(codec, settings.agent_batch_max, settings.agent_batch_within_ms)
    engine = SlaEngine(
        district,
        timing_from(settings),
        TableCases(
            batcher.table(app.Table("sla-cases", default=None, key_type=str, value_type=None, partitions=n)), codec
        ),
        TableClocks(batcher.table(app.Table("sla-clocks", default=None, key_type=str, value_type=None, partitions=n))),
    )

    async def handle(record: EventT[bytes]) -> None:
        m = as_message(record)
        outcome = classify(codec, limits, m)
        if not isinstance(outcome, Accepted):
            return  # poison is the projector's to dead-letter
        for step in engine.on_record(
            Record(outcome.event, m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
        ):
            for e in step.events:
                await batcher.outbox.send(targets[e.type], e)
            step.commit()

    @app.agent(case_events, name="sla")
    async def sla(stream: StreamT[bytes]) -> None:
        await batcher.run(stream, handle)

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        engine.forget_index()

    app.on_partitions_assigned.connect(_rebalanced)

    ticked = {t.get_topic_name(): t for t in (case_events, raw_topic(app, settings.topic("alarms")))}

    async def tick() -> None:
        """Append a tick to every case-events and alarms partition this worker owns (their engines' clocks)."""
        for tp in app.assignor.assigned_actives():
            if tp.topic in ticked:
                tick_id = f"tick/{tp.partition}"
                event = Event(
                    "ClockTicked",
                    {
                        "event_id": str(uuid.uuid4()),
                        "occurred_at": datetime.now(UTC),
                        "source": WORKER_SOURCE,
                        "tick_id": tick_id,
                        "partition": tp.partition,
                    },
                )
                await ticked[tp.topic].send(key=tick_id.encode(), value=codec.encode(event), partition=tp.partition)

    app.timer(settings.tick_interval_ms / 1000)(tick)
