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
from projections.rows import PROJECTIONS, Projection, RowContext, projections_for
from projections.sink import dedup_token
from projections.tables import Rows
from schemas.codec import Codec
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams import metrics
from streams.ingest import Accepted, Message, Rejected, classify, dead_letter
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
        self.sink, self.publisher, self.deadletter_topic = sink, publisher, deadletter_topic
        # Our own dead-letter records carry an oversized original whole: no size limit for them.
        self._deadletter_limits = replace(limits, max_bytes=DEADLETTER_MAX_BYTES)
        self._marks: dict[tuple[str, str], dict[int, int]] = {}
        # One thread: ClickHouse calls block, and chDB wants one caller at a time.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    def forget_marks(self) -> None:
        """Drop cached high-water marks; call on every rebalance."""
        self._marks.clear()

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def handle(self, messages: Sequence[Message]) -> BatchReport:
        await self._load_marks(messages)
        # Decoding and building rows is the CPU-heavy part: off the event loop, in the ClickHouse thread,
        # so the stream agents sharing this process keep running meanwhile.
        report, tables, poison = await self.call(lambda: self._rows(messages))
        if poison:
            await self._dead_letter(poison)
            report.dead_lettered = len(poison)
        report.by_table = dict.fromkeys(tables, 0)
        batch = [rows for rows in tables.values() if len(rows)]
        present = await self._retry(partial(self.sink.existing, batch))
        for rows in batch:
            report.by_table[rows.spec.name] = await self._write(rows.without(present[rows.spec.name]), messages)
        return report

    def _rows(self, messages: Sequence[Message]) -> tuple[BatchReport, dict[str, Rows], list[Rejected]]:
        report = BatchReport()
        ctx = RowContext(self.codec, self.redactor, datetime.now(UTC))
        tables = {p.spec.name: Rows(p.spec) for p in PROJECTIONS}
        poison: list[Rejected] = []
        for message in messages:
            outcome = classify(self.codec, self._limits(message), message)
            if isinstance(outcome, Rejected):
                if message.topic == self.deadletter_topic:
                    log.error("unreadable dead-letter record at %s: %s", message.origin, outcome.error)
                else:
                    poison.append(outcome)
                continue
            for projection in projections_for(outcome.event.type):
                if self._is_new(projection, message):
                    tables[projection.spec.name].append(self._row(projection, outcome, ctx))
                    report.projected += 1
                else:
                    report.skipped += 1
        return report, tables, poison

    def _limits(self, message: Message) -> Limits:
        return self._deadletter_limits if message.topic == self.deadletter_topic else self.limits

    @staticmethod
    def _row(projection: Projection, accepted: Accepted, ctx: RowContext) -> tuple[object, ...]:
        m = accepted.message
        return projection.row(accepted.event, (m.topic, m.partition, m.offset), ctx)

    def _is_new(self, projection: Projection, message: Message) -> bool:
        marks = self._marks[(projection.spec.name, message.topic)]
        return message.offset > marks.get(message.partition, -1)

    async def _dead_letter(self, poison: list[Rejected]) -> None:
        await self.publisher.publish(self.deadletter_topic, [dead_letter(p) for p in poison])
        metrics.dead_lettered(poison)
        for rejected in poison:
            m, e = rejected.message, rejected.error
            log.warning("dead-lettered %s: %s: %s", m.origin, e.error_class, e.reason)

    async def _load_marks(self, messages: Sequence[Message]) -> None:
        """High-water marks for every (table, topic) in the batch, read once per assignment."""
        for topic in sorted({m.topic for m in messages}):
            for projection in PROJECTIONS:
                key = (projection.spec.name, topic)
                if key not in self._marks:
                    self._marks[key] = await self._retry(partial(self.sink.high_water, *key))

    async def _write(self, rows: Rows, messages: Sequence[Message]) -> int:
        """Insert the rows (those not yet in the table); returns how many were inserted."""
        ranges: dict[tuple[str, int], list[int]] = {}
        for m in messages:
            span = ranges.setdefault((m.topic, m.partition), [m.offset, m.offset])
            span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
        token = dedup_token(rows.spec.name, [(t, p, a, b) for (t, p), (a, b) in ranges.items()])
        final = rows
        await self._retry(lambda: self.sink.write(final, token))
        for (topic, partition), (_, last) in ranges.items():
            marks = self._marks.setdefault((rows.spec.name, topic), {})
            marks[partition] = max(marks.get(partition, -1), last)
        return len(rows)

    async def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.2
        while True:
            try:
                return await self.call(fn)
            except TransientSinkError as exc:
                log.warning("ClickHouse is unavailable (%s); retrying in %.1fs with the same token", exc, delay)
                metrics.clickhouse_retry()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
