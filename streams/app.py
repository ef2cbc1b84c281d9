"""The Faust app: wiring of agents, tables and the embedded database's ClickHouse HTTP interface. Agents stay thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust
import mode.loop

from projections import failpoints
from projections.analyst import AnalystEngine, AnalystLimits
from projections.client import connect, describe, embedded_path
from projections.failpoints import FailingSink
from projections.migrate import migrate
from projections.sink import ClickHouseSink
from schemas.codec import Codec
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams import board_web, faust_ext, logs, metrics
from streams.agents import projection, wiring
from streams.agents.projection import FaustPublisher
from streams.board import board_leads
from streams.clickhouse_http import ClickHouseHTTP, HttpConfig
from streams.kafka_admin import DEADLETTER_MAX_BYTES, ensure_topics
from streams.ports import ProjectionSink
from streams.projector import Projector
from streams.reference_files import DEFAULT_DIRECTORY, load_district, load_hotspot_policy
from streams.settings import TOPIC_SUFFIXES, Settings, require_server_for_cluster

log = logging.getLogger(__name__)


def faust_app(settings: Settings) -> faust.App:
    """The worker's Faust app before any agent or task is added (the bench's bare agent runs on it too)."""
    (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.faust_app_id,
        # Kafka through streams.faust_ext.Transport, which takes the consumer's fetch wait from the URL.
        broker=f"{faust_ext.SCHEME}://{settings.kafka_bootstrap}?{faust_ext.FETCH_MAX_WAIT}={settings.fetch_max_wait_ms}",
        TableManager=faust_ext.TableManager,
        # Tables persist locally (RocksDB): a restart recovers from its own files plus the changelog's tail, not
        # from the whole changelog. No standby replicas: each worker reads only its own partitions' changelogs.
        store="rocksdb://",
        table_standby_replicas=0,
        datadir=str(settings.var_dir / "faust" / settings.faust_app_id),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=DEADLETTER_MAX_BYTES + 64 * 1024,
        # A partition batch of an agent's batch goes out in one produce request (topics take 1 MiB messages).
        producer_max_batch_size=512 * 1024,
        web_bind=settings.web_bind,
        web_host="127.0.0.1",
        web_port=settings.web_port,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # A killed worker's partitions move after 10 s instead of Faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        loghandlers=[],
    )


def _on_start(app: faust.App, settings: Settings, policy_line: str) -> None:
    """Once the worker has set up logging: the levels asked for, repeats summarised, and the SLA policy in force.

    Faust's worker leaves its own, mode's and aiokafka's loggers at DEBUG whatever the level asked for,
    so every debug call builds a record (7% of a busy worker's time)."""

    async def started() -> None:
        logs.set_levels(settings.log_level)
        logs.install()  # a broker outage: one line per kind of client error and half minute, not thousands
        log.info("%s", policy_line)

    app.task(started)


def create_app(settings: Settings) -> faust.App:
    """Validate the reference data and the database first: a bad file is a start-up error, not a crash later."""
    faust_ext.check_versions()
    district_dir = settings.district_dir or DEFAULT_DIRECTORY
    district, hotspot_policy = load_district(district_dir), load_hotspot_policy(district_dir)
    codec = Codec()
    limits = Limits(max_bytes=settings.max_message_bytes, max_future=timedelta(hours=settings.max_future_hours))
    redactor = Redactor(settings.phone_key())
    app = faust_app(settings)
    _on_start(app, settings, f"SLA policy in force: {district_dir / 'sla.json'}: {district.sla.describe()}")
    metrics.install(app, settings)  # GET /metrics
    if settings.role in ("all", "agents"):
        wiring.register(app, settings, codec, district, hotspot_policy, redactor, limits)
    if settings.role in ("all", "projector"):
        names = {c.code: c.name for c in district.categories}
        _add_projector(app, settings, codec, limits, redactor, board_leads(district), names)
    return app


def _add_projector(
    app: faust.App,
    settings: Settings,
    codec: Codec,
    limits: Limits,
    redactor: Redactor,
    leads: Mapping[str, float],
    category_names: Mapping[str, str],
) -> None:
    """The one process that writes ClickHouse (chDB allows one per path) serves analysts' queries on it."""
    require_server_for_cluster(settings)
    client = connect(settings.dsn)
    applied = migrate(client, cluster=settings.clickhouse_cluster)
    where = f" on cluster {settings.clickhouse_cluster}" if settings.clickhouse_cluster else ""
    log.info("ClickHouse %s%s ready (migrations applied now: %s)", describe(settings.dsn), where, applied or "none")
    sink: ProjectionSink = ClickHouseSink(client, settings.clickhouse_cluster)
    if settings.failpoints:
        sink = FailingSink(sink, failpoints.parse(settings.failpoints))
        log.warning("ClickHouse writes fail on purpose: ALARMFLOW_FAILPOINTS=%s", settings.failpoints)
    sink = metrics.MeteredSink(sink)
    projector = Projector(codec, limits, redactor, sink, FaustPublisher(app, codec), settings.topic("deadletter"))

    async def project_topics() -> None:
        await projection.run(settings, projector)

    app.task(project_topics)
    board_web.register(app, board_web.BoardData(settings, client, projector.call, leads, category_names))

    path = embedded_path(settings.dsn)
    if path is not None and settings.clickhouse_http_port:
        _add_clickhouse_http(app, settings, path)


def _add_clickhouse_http(app: faust.App, settings: Settings, path: Path) -> None:
    """Analysts' tools reach the embedded database here (a server DSN has its own HTTP interface)."""
    limits = AnalystLimits(
        max_execution_time_s=settings.analyst_max_execution_s,
        max_result_rows=settings.analyst_max_result_rows,
        max_result_bytes=settings.analyst_max_result_bytes,
        max_memory_usage=settings.analyst_max_memory_bytes,
        max_threads=settings.analyst_max_threads,
    )
    engine = AnalystEngine(path, limits, threads=settings.analyst_connections)
    config = HttpConfig(
        settings.clickhouse_http_bind,
        settings.clickhouse_http_port,
        settings.clickhouse_http_user,
        settings.clickhouse_http_secret(),
    )

    class Interface(ClickHouseHTTP):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(engine, config, **kwargs)

    app.service(Interface)  # Faust's hook for a mode.Service started and stopped with the worker


def run_worker(settings: Settings) -> None:
    """Run the Faust worker in the foreground until SIGTERM or Ctrl-C."""
    topics = [settings.topic(s) for s in TOPIC_SUFFIXES]
    if settings.role in ("all", "agents"):
        topics += wiring.changelog_topics(settings)
    asyncio.run(ensure_topics(settings.kafka_bootstrap, topics, settings.partitions))
    # Faust's and aiokafka's per-message work is event-loop work: uvloop (Faust's documented ``-L uvloop``) takes
    # about a fifth off the CPU a consumed message costs.
    mode.loop.use(settings.event_loop)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
