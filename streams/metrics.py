"""The worker's Prometheus metrics: ``GET /metrics`` on its web port, in Prometheus text format.

Every metric alarmflow exports is defined here, so the wiring stays visible in one place. Most values are read
when Prometheus scrapes, not counted on the way: the case engine's partitions (watermark, open cases, pending
deadlines, the oldest overdue stage), the broker's end and committed offsets (read once per scrape, at most
once a second), Faust's own monitor (records each agent consumed, rebalances, commit latency) and the process.
The hot paths only hand a finished batch over (``agent_batch``, ``projector_batch``, ``dead_lettered``), never
a record at a time.

Labels are bounded: group, topic, partition, stage, level, class, table, operation, kind. Never a case, an
event or a person.

Faust ships a Prometheus sensor (``faust.sensors.prometheus``), but it replaces the app's monitor with one that
updates a dozen labelled series for every record in and out, observes in milliseconds, and serves a page of
its own on ``/metrics``. The default monitor already keeps the same figures, so they are read from it at
scrape time instead (``_FaustCollector``): no per-record cost on top of what Faust does anyway, base units.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from aiohttp.web import Response
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.web import Request, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projections.errors import TransientSinkError
from projections.tables import Rows
from streams.domain.case_engine import CaseEngine
from streams.domain.engine import Emit
from streams.domain.sla import STAGES, Case
from streams.ingest import Rejected
from streams.ports import ProjectionSink
from streams.settings import Settings

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
PlatformCollector(registry=REGISTRY)

# A command room acts within minutes; a replay decides last month's breaches days after their deadline.
DELAY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 86400)
DETECTION_DELAY = Histogram(
    "alarmflow_breach_detection_delay_seconds",
    "Wall-clock time from a stage's deadline plus the allowed lateness to its SlaBreached being published",
    ["stage"],
    buckets=DELAY_BUCKETS,
    registry=REGISTRY,
)
BATCH_RECORDS = Histogram(
    "alarmflow_projector_batch_records",
    "Records per projector batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
    registry=REGISTRY,
)
INSERT_SECONDS = Histogram(
    "alarmflow_clickhouse_insert_seconds",
    "Time of one successful ClickHouse insert of a projector batch into one table",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
ROWS = Counter("alarmflow_projector_rows", "Rows the projector inserted", ["table"], registry=REGISTRY)
CLICKHOUSE_ERRORS = Counter(
    "alarmflow_clickhouse_errors",
    "ClickHouse calls that failed, by operation (write, existing, high_water) and kind (transient, permanent)",
    ["operation", "kind"],
    registry=REGISTRY,
)
CLICKHOUSE_RETRIES = Counter(
    "alarmflow_clickhouse_retries", "ClickHouse calls the projector retried after a transient error", registry=REGISTRY
)
LOOP_LAG = Histogram(
    "alarmflow_event_loop_lag_seconds",
    "How late the worker's event loop woke a timer (sampled every 0.5 s)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
LOOP_SAMPLE_S = 0.5
ESCALATION_LEVELS = ("GRID", "STREET_POOL", "COMMAND_ROOM")  # where streams.domain.sla moves an unaccepted case
for _stage in STAGES:
    DETECTION_DELAY.labels(_stage)


@dataclass
class _Tallies:
    """Counts kept on the event loop thread, exported by ``_WorkerCollector`` (cheaper than a labelled Counter)."""

    records_out: Tally[str] = field(default_factory=Tally)  # by topic suffix
    ticks_out: Tally[str] = field(default_factory=Tally)  # by topic name
    projector_in: Tally[str] = field(default_factory=Tally)  # by topic name
    dispatches: int = 0
    # Known label values start at 0, so the first breach shows in rate() and increase() (a series that appears
    # at 6 has increased by nothing as far as Prometheus knows).
    breaches: Tally[str] = field(default_factory=lambda: Tally(dict.fromkeys(STAGES, 0)))  # by stage
    escalations: Tally[tuple[str, str]] = field(  # by (stage, level)
        default_factory=lambda: Tally(dict.fromkeys(((STAGES[0], level) for level in ESCALATION_LEVELS), 0))
    )
    dead_letters: Tally[tuple[str, str]] = field(default_factory=Tally)  # by (class, source topic)


@dataclass
class _Sources:
    """What the collectors read at scrape time; set by ``install`` (one app per worker process)."""

    settings: Settings | None = None
    app: faust.App | None = None
    cases: CaseEngine | None = None
    lag: LagReader | None = None
    lateness_s: float = 0.0
    tallies: _Tallies = field(default_factory=_Tallies)


SOURCES = _Sources()


# ---- hooks for the hot paths: one call per batch ---------------------------------------------------------------


def agent_batch(emits: Sequence[Emit]) -> None:
    """After an agent's batch is acknowledged: what it published, breaches, escalations and dead letters."""
    if not emits:
        return
    t, now, lateness = SOURCES.tallies, time.time(), SOURCES.lateness_s
    t.records_out.update(e.topic for e in emits)
    for e in emits:
        kind = e.event.type
        if kind == "CaseDispatched":
            t.dispatches += 1
        elif kind == "SlaBreached":
            stage, f = e.event.fields["stage"], e.event.fields
            t.breaches[stage] += 1
            DETECTION_DELAY.labels(stage).observe(max(now - f["deadline"].timestamp() - lateness, 0.0))
        elif kind == "CaseReassigned" and e.topic == "case-events":  # its copy to routing is the same escalation
            t.escalations[(STAGES[0], e.event.fields["level"])] += 1
        elif kind == "DeadLettered":
            t.dead_letters[(e.event.fields["error_class"], e.event.fields["source_topic"])] += 1


def tick_sent(topic_name: str) -> None:
    SOURCES.tallies.ticks_out[topic_name] += 1


def projector_batch(batch: Mapping[TopicPartition, Sized]) -> None:
    """After a projector batch is committed: records read per topic."""
    tally, total = SOURCES.tallies.projector_in, 0
    for tp, records in batch.items():
        tally[tp.topic] += len(records)
        total += len(records)
    BATCH_RECORDS.observe(total)


def dead_lettered(poison: Iterable[Rejected]) -> None:
    """The projector's dead letters, once the broker acknowledged them."""
    t = SOURCES.tallies
    for p in poison:
        t.dead_letters[(p.error.error_class, p.message.topic)] += 1
        t.records_out["deadletter"] += 1


def clickhouse_retry() -> None:
    CLICKHOUSE_RETRIES.inc()


class MeteredSink:
    """A ProjectionSink that times each insert and counts rows and errors, around the real one."""

    def __init__(self, inner: ProjectionSink) -> None:
        self.inner = inner

    def high_water(self, table: str, topic: str) -> dict[int, int]:
        with _errors("high_water"):
            return self.inner.high_water(table, topic)

    def existing(self, batch: Sequence[Rows]) -> dict[str, set[Any]]:
        with _errors("existing"):
            return self.inner.existing(batch)

    def write(self, rows: Rows, token: str) -> None:
        start = time.perf_counter()
        with _errors("write"):
            self.inner.write(rows, token)
        INSERT_SECONDS.labels(rows.spec.name).observe(time.perf_counter() - start)
        ROWS.labels(rows.spec.name).inc(len(rows))


@contextlib.contextmanager
def _errors(operation: str) -> Iterator[None]:
    try:
        yield
    except TransientSinkError:
        CLICKHOUSE_ERRORS.labels(operation, "transient").inc()
        raise
    except Exception:
        CLICKHOUSE_ERRORS.labels(operation, "permanent").inc()
        raise


# ---- read at scrape time ---------------------------------------------------------------------------------------


class LagReader:
    """End offsets and committed offsets of the worker's groups, read from the broker with long-lived clients."""

    MIN_INTERVAL_S = 1.0
    TIMEOUT_S = 5.0

    def __init__(self, bootstrap: str, groups: Mapping[str, Sequence[str]]) -> None:
        self.bootstrap, self.groups = bootstrap, {g: list(t) for g, t in groups.items()}
        self.ends: dict[TopicPartition, int] = {}
        self.committed: dict[str, dict[TopicPartition, int]] = {}
        self.read_at = 0.0
        self.errors = 0
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self.read_at < self.MIN_INTERVAL_S:
                return
            try:
                await asyncio.wait_for(self._read(), self.TIMEOUT_S)
            except (KafkaError, OSError, TimeoutError) as exc:
                self.errors += 1
                log.warning("metrics: cannot read offsets from %s: %r", self.bootstrap, exc)
                await self.close()  # fresh clients next time
            else:
                self.read_at = time.monotonic()

    async def _read(self) -> None:
        if self._admin is None or self._consumer is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5_000)
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            await self._admin.start()
            await self._consumer.start()
        topics = sorted({t for ts in self.groups.values() for t in ts})
        described = await self._admin.describe_topics(topics)
        tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in described
            if d["error_code"] == 0
            for p in sorted(d["partitions"], key=lambda p: int(p["partition"]))
        ]
        ends = await self._consumer.end_offsets(tps) if tps else {}
        committed = {}
        for group, group_topics in self.groups.items():
            offsets = await self._admin.list_consumer_group_offsets(group)
            committed[group] = {tp: m.offset for tp, m in offsets.items() if tp.topic in group_topics and m.offset >= 0}
        self.ends, self.committed = dict(ends), committed

    async def close(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    await (client.stop() if isinstance(client, AIOKafkaConsumer) else client.close())
        self._admin = self._consumer = None


def _counter(name: str, doc: str, labels: Sequence[str], values: Iterable[tuple[Sequence[str], float]]) -> Metric:
    metric = CounterMetricFamily(name, doc, labels=list(labels))
    for label_values, value in values:
        metric.add_metric(list(label_values), value)
    return metric


def _gauge(name: str, doc: str, labels: Sequence[str], values: Iterable[tuple[Sequence[str], float]]) -> Metric:
    metric = GaugeMetricFamily(name, doc, labels=list(labels))
    for label_values, value in values:
        metric.add_metric(list(label_values), value)
    return metric


class _WorkerCollector(Collector):
    """The tallies and the broker's offsets."""

    def collect(self) -> Iterator[Metric]:
        s = SOURCES
        if s.settings is None:
            return
        t, topic = s.tallies, s.settings.topic
        out = Tally({topic(k): v for k, v in t.records_out.items()})
        out.update(t.ticks_out)
        yield _counter(
            "alarmflow_records_out",
            "Records the worker published, by topic (agents' outputs and clock records, the projector's dead letters)",
            ["topic"],
            (((k,), v) for k, v in sorted(out.items())),
        )
        yield _counter("alarmflow_dispatches", "CaseDispatched published", [], [((), t.dispatches)])
        yield _counter(
            "alarmflow_sla_breaches",
            "SlaBreached published, by stage",
            ["stage"],
            (((k,), v) for k, v in t.breaches.items()),
        )
        yield _counter(
            "alarmflow_escalations",
            "CaseReassigned published (an unaccepted case moved up), by stage and the level it moved to",
            ["stage", "level"],
            (t.escalations.items()),
        )
        yield _counter(
            "alarmflow_dead_letters",
            "Records dead-lettered by this worker, by error class and source topic",
            ["class", "source_topic"],
            t.dead_letters.items(),
        )
        yield _gauge("alarmflow_sla_lateness_seconds", "The allowed lateness (configuration)", [], [((), s.lateness_s)])
        yield from self._records_in()
        yield from self._offsets()

    def _records_in(self) -> Iterator[Metric]:
        s = SOURCES
        assert s.settings is not None
        values: list[tuple[tuple[str, str], float]] = []
        if s.app is not None and s.settings.role in ("all", "agents"):
            by_topic = getattr(s.app.monitor, "messages_received_by_topic", None) or {}
            values += [((s.settings.app_id, t), n) for t, n in by_topic.items()]
        values += [((f"{s.settings.app_id}-projector", t), n) for t, n in s.tallies.projector_in.items()]
        yield _counter(
            "alarmflow_records_in", "Records consumed, by consumer group and topic", ["group", "topic"], values
        )

    def _offsets(self) -> Iterator[Metric]:
        lag = SOURCES.lag
        if lag is None:
            return
        yield _gauge(
            "alarmflow_topic_end_offset",
            "Log end offset per topic partition (at the last scrape)",
            ["topic", "partition"],
            (((tp.topic, str(tp.partition)), end) for tp, end in sorted(lag.ends.items())),
        )
        committed, lags = [], []
        for group, offsets in sorted(lag.committed.items()):
            for tp in sorted(tp for tp in lag.ends if tp.topic in lag.groups[group]):
                done = offsets.get(tp)
                labels = (group, tp.topic, str(tp.partition))
                if done is not None:
                    committed.append((labels, done))
                lags.append((labels, lag.ends[tp] - (done or 0)))
        yield _gauge(
            "alarmflow_consumer_committed_offset",
            "Committed offset per consumer group and topic partition",
            ["group", "topic", "partition"],
            committed,
        )
        yield _gauge(
            "alarmflow_consumer_lag_records",
            "Log end offset minus committed offset (the whole log when nothing is committed)",
            ["group", "topic", "partition"],
            lags,
        )
        yield _counter("alarmflow_offsets_read_errors", "Failed reads of the broker's offsets", [], [((), lag.errors)])


class _CaseCollector(Collector):
    """The case engine's partitions this worker holds: watermark, open cases, deadlines, the oldest overdue stage."""

    def collect(self) -> Iterator[Metric]:
        s = SOURCES
        if s.cases is None or s.settings is None:
            return
        topic, now = s.settings.topic("case-events"), time.time()
        watermark, delay, oldest = [], [], []
        open_cases: list[tuple[tuple[str, str, str], int]] = []
        pending: list[tuple[tuple[str, str, str], int]] = []
        for partition, state in sorted(s.cases.partitions.items()):
            p = str(partition)
            at = state.meta.clock.watermark
            if at is not None:
                watermark.append(((topic, p), at.timestamp()))
                delay.append(((topic, p), now - at.timestamp()))
            waiting, undecided, first = _count_cases(state.cases.values())
            open_cases += [((topic, p, stage), n) for stage, n in zip((*STAGES, "CONCLUSION"), waiting, strict=True)]
            pending += [((topic, p, stage), n) for stage, n in zip(STAGES, undecided, strict=True)]
            oldest.append(((topic, p), 0.0 if first is None else max(now - first.timestamp(), 0.0)))
        yield _gauge(
            "alarmflow_watermark_timestamp_seconds",
            "A case-events partition's watermark (how far event time has provably progressed), as Unix time",
            ["topic", "partition"],
            watermark,
        )
        yield _gauge(
            "alarmflow_watermark_delay_seconds",
            "Wall clock minus the partition's watermark (the allowed lateness included)",
            ["topic", "partition"],
            delay,
        )
        yield _gauge(
            "alarmflow_open_cases",
            "Open tracked cases by the SLA stage they wait for (CONCLUSION: every stage met, not concluded yet)",
            ["topic", "partition", "stage"],
            open_cases,
        )
        yield _gauge(
            "alarmflow_pending_deadlines",
            "Deadlines of unmet stages of open cases not decided yet",
            ["topic", "partition", "stage"],
            pending,
        )
        yield _gauge(
            "alarmflow_oldest_overdue_stage_age_seconds",
            "Wall-clock age of the oldest deadline passed by an unmet stage of an open case (0 when none)",
            ["topic", "partition"],
            oldest,
        )


def _count_cases(cases: Iterable[Case]) -> tuple[list[int], list[int], datetime | None]:
    """Open tracked cases by the stage they wait for (the last slot: every stage met), undecided deadlines of unmet
    stages, and the earliest deadline of an unmet stage. A stage's event meets the earlier stages too, so the unmet
    stages are the ones from the first unmet on. One pass, no allocation per case: it runs on the event loop."""
    waiting, undecided = [0, 0, 0, 0], [0, 0, 0]
    first: datetime | None = None
    for case in cases:
        deadlines = case.deadlines
        if deadlines is None or not case.tracked or case.cancelled_at is not None:
            continue
        met = case.met
        w = 0 if met[0] is None else 1 if met[1] is None else 2 if met[2] is None else 3
        waiting[w] += 1
        if w == 3:
            continue
        decided = case.decided
        for i in range(w, 3):
            if not decided[i]:
                undecided[i] += 1
        earliest = min(deadlines[w:])
        if first is None or earliest < first:
            first = earliest
    return waiting, undecided, first


class _FaustCollector(Collector):
    """Faust's own monitor (app.monitor), read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        app = SOURCES.app
        monitor = None if app is None else getattr(app, "monitor", None)
        if monitor is None:
            return
        yield _counter(
            "alarmflow_faust_messages_received",
            "Messages Faust's consumer received",
            [],
            [((), monitor.messages_received_total)],
        )
        yield _gauge(
            "alarmflow_faust_messages_active",
            "Messages being processed by Faust's streams",
            [],
            [((), monitor.messages_active)],
        )
        yield _counter("alarmflow_faust_rebalances", "Rebalances this worker has seen", [], [((), monitor.rebalances)])
        latency = list(monitor.commit_latency or ())
        yield _gauge(
            "alarmflow_faust_commit_latency_seconds",
            "Mean latency of Faust's recent offset commits",
            [],
            [((), sum(latency) / len(latency) / 1000 if latency else 0.0)],
        )
        yield _gauge(
            "alarmflow_faust_rebalance_return_seconds",
            "Mean time of Faust's recent rebalances until the consumer rejoined",
            [],
            [((), monitor.rebalance_return_avg / 1000)],
        )


REGISTRY.register(_WorkerCollector())
REGISTRY.register(_CaseCollector())
REGISTRY.register(_FaustCollector())


# ---- wiring ----------------------------------------------------------------------------------------------------


def watch_cases(engine: object) -> None:
    """The case engine whose partitions ``_CaseCollector`` reads."""
    if isinstance(engine, CaseEngine):
        SOURCES.cases = engine


def install(app: faust.App, settings: Settings) -> None:
    """Serve ``/metrics`` and sample the event loop; the collectors read this app's state."""
    groups = {g: t for g, t in settings.consumer_groups().items() if _runs(settings, g)}
    SOURCES.settings, SOURCES.app = settings, app
    SOURCES.lateness_s = settings.sla_lateness_ms / 1000
    SOURCES.lag = LagReader(settings.kafka_bootstrap, groups)

    async def sample_loop() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LOOP_SAMPLE_S)
            LOOP_LAG.observe(max(loop.time() - start - LOOP_SAMPLE_S, 0.0))

    app.task(sample_loop)

    async def close_clients(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        lag = SOURCES.lag
        if lag is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lag.close(), 5)

    app.on_before_shutdown.connect(close_clients)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            lag = SOURCES.lag
            if lag is not None:
                await lag.refresh()
            return Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _runs(settings: Settings, group: str) -> bool:
    projector = group.endswith("-projector")
    return settings.role == "all" or (settings.role == "projector") == projector
