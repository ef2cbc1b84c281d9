"""Projects consumed batches into ClickHouse and routes poison to the dead-letter topic.

The caller acknowledges a batch's offsets only after ``handle`` returns: by then every good
event is in ClickHouse and every bad one is durably in the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from projections.errors import TransientSinkError
from projections.sink import dedup_token
from projections.tables import DEADLETTERS, EVENTS, Rows, TableSpec
from schemas.codec import Codec
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams.ingest import Message, Rejected, classify, dead_letter, deadletter_row, event_row
from streams.kafka_admin import DEADLETTER_MAX_BYTES
from streams.ports import EventPublisher, ProjectionSink

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class BatchReport:
    """What one batch did, for logs and tests."""

    projected: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


class Projector:
    """Turns batches of messages into idempotent writes; owns the high-water-mark cache."""

    def __init__(
        self,
        codec: Codec,
        limits: Limits,
        redactor: Redactor,
        sink: ProjectionSink,
        publisher: EventPublisher,
        deadletter_topic: str,
    ) -> None:
        self.codec, self.limits, self.redactor = codec, limits, redactor
        # Our own dead-letter records carry an oversized original whole: no size limit for them.
        self._deadletter_limits = replace(limits, max_bytes=DEADLETTER_MAX_BYTES)
        self.sink, self.publisher, self.deadletter_topic = sink, publisher, deadletter_topic
        self._marks: dict[tuple[str, str], dict[int, int]] = {}
        # One thread: ClickHouse calls block, and chDB wants one caller at a time.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    def forget_marks(self) -> None:
        """Drop cached high-water marks; call on every rebalance."""
        self._marks.clear()

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def handle(self, messages: Sequence[Message]) -> BatchReport:
        report = BatchReport()
        now = datetime.now(UTC)
        events, deadletters = Rows(EVENTS), Rows(DEADLETTERS)
        poison: list[Rejected] = []
        await self._load_marks(messages)
        for message in messages:
            limits = self._deadletter_limits if message.topic == self.deadletter_topic else self.limits
            outcome = classify(self.codec, limits, message)
            if isinstance(outcome, Rejected):
                if message.topic == self.deadletter_topic:
                    log.error("unreadable dead-letter record at %s: %s", message.origin, outcome.error)
                else:
                    poison.append(outcome)
                continue
            if message.topic == self.deadletter_topic:
                target, values = deadletters, deadletter_row(outcome, now)
            else:
                target, values = events, event_row(self.codec, self.redactor, outcome, now)
            if message.offset > self._marks[(target.spec.name, message.topic)].get(message.partition, -1):
                target.append(values)
                report.projected += 1
            else:
                report.skipped += 1
        if poison:
            await self.publisher.publish(self.deadletter_topic, [dead_letter(p) for p in poison])
            report.dead_lettered = len(poison)
            for rejected in poison:
                log.warning(
                    "dead-lettered %s: %s: %s",
                    rejected.message.origin,
                    rejected.error.error_class,
                    rejected.error.reason,
                )
        for rows in (events, deadletters):
            await self._write(rows, self._picked(messages, rows.spec))
            report.by_table[rows.spec.name] = len(rows)
        return report

    def _spec_for(self, topic: str) -> TableSpec:
        return DEADLETTERS if topic == self.deadletter_topic else EVENTS

    def _picked(self, messages: Sequence[Message], spec: TableSpec) -> list[Message]:
        return [m for m in messages if self._spec_for(m.topic) is spec]

    async def _load_marks(self, messages: Sequence[Message]) -> None:
        """High-water marks for every (table, topic) in the batch, read once per assignment."""
        for topic in sorted({m.topic for m in messages}):
            key = (self._spec_for(topic).name, topic)
            if key not in self._marks:
                self._marks[key] = await self._retry(partial(self.sink.high_water, *key))

    async def _write(self, rows: Rows, messages: Sequence[Message]) -> None:
        if not len(rows):
            return
        ranges: dict[tuple[str, int], list[int]] = {}
        for m in messages:
            span = ranges.setdefault((m.topic, m.partition), [m.offset, m.offset])
            span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
        token = dedup_token(rows.spec.name, [(t, p, a, b) for (t, p), (a, b) in ranges.items()])
        await self._retry(lambda: self.sink.write(rows, token))
        for (topic, partition), (_, last) in ranges.items():
            marks = self._marks.setdefault((rows.spec.name, topic), {})
            marks[partition] = max(marks.get(partition, -1), last)

    async def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.2
        while True:
            try:
                return await self.call(fn)
            except TransientSinkError as exc:
                log.warning("ClickHouse is unavailable (%s); retrying in %.1fs with the same token", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
