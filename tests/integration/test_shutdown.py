"""Stopping and restarting: SIGTERM during a backlog finishes in seconds, and a restart recovers the agents' state
from its local files plus the changelog's tail, not from the whole changelog."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rocksdict import AccessType, Rdict

from streams.kafka_admin import groups_lag
from streams.reference_files import load_district
from streams.simulator.config import SimConfig
from streams.simulator.generator import generate
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration
OFFSET_KEY = b"__faust\x00offset__"  # where Faust's RocksDB store keeps the changelog offset it has applied


def _backlog(stack: Stack, days: float) -> int:
    """A simulated street published before the worker starts; the number of distinct events in it."""
    config = SimConfig(seed=4, start=datetime(2026, 5, 1, 16, tzinfo=UTC), days=days, rate_per_day=800, malformed=0)
    events = [e.value for e in generate(config, load_district()) if isinstance(e.value, dict)]
    stack.publish(events)
    return len({e["event_id"] for e in events})


def test_sigterm_during_a_backlog_finishes_within_seconds_and_loses_nothing(stack: Stack) -> None:
    n = _backlog(stack, days=2)
    worker = stack.start_worker()
    time.sleep(4)  # well into the backlog
    pending = sum(
        x.pending for x in asyncio.run(groups_lag(stack.settings.kafka_bootstrap, stack.settings.consumer_groups()))
    )
    started = time.monotonic()
    stack.stop(worker, signal.SIGTERM)
    took = time.monotonic() - started
    assert pending > 0  # it really was mid-backlog
    assert worker.returncode == 0 and took < 10, (worker.returncode, took, stack.worker_log()[-2000:])
    stack.start_worker()
    stack.caught_up(timeout=300)
    upstream = "SELECT count(), uniqExact(event_id) FROM v_events WHERE source != 'alarmflow.worker'"
    assert stack.sql(upstream) == [[n, n]]
    assert stack.sql("SELECT count() = uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM events") == [[1]]


def test_a_restart_recovers_from_the_local_files_plus_the_changelog_tail(stack: Stack) -> None:
    _backlog(stack, days=1)
    worker = stack.start_worker()
    stack.caught_up(timeout=300)
    stack.stop(worker, signal.SIGTERM)
    tables = stack.settings.var_dir / "faust" / stack.settings.app_id / "v1" / "tables"
    persisted = {}
    for db in sorted(tables.glob("*-state-*.db")):
        store = Rdict(str(db), access_type=AccessType.read_only())
        value = store.get(OFFSET_KEY)
        store.close()
        name, partition = db.stem.rsplit("-", 1)
        persisted[(f"{stack.settings.app_id}-{name}-changelog", int(partition))] = None if value is None else int(value)
    assert {t for t, _ in persisted} == {
        f"{stack.settings.app_id}-{a}-state-changelog" for a in ("triage", "streets", "cases", "outcomes")
    }

    async def ends() -> dict[tuple[str, int], int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t, p in persisted]
            return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    # every record of every changelog is in the local files: a restart reads nothing but what comes after
    assert {k: (v if v is not None else -1) + 1 for k, v in persisted.items()} == asyncio.run(ends())
