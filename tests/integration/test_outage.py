"""An outage or a backfill changes nothing: the real pipeline decides exactly what an uninterrupted live run does.

The reference is the live run of the same events on the pure engines in one process (chaos.model):
every event processed at its own time, every derived record the moment it exists. (Of the warnings, the certain ones
are compared: a warning on a stage a late event met in time depends on when that event was read; see
chaos.observe.CERTAIN_ALERTS.) The real pipeline gets the
same simulated day (a hotspot build-up, disorder within the lateness, duplicates, malformed messages) as a
backlog published before the worker starts, and as a stream with the worker stopped in the middle while hours
of the rest are published: the dispatches of those alarms then come after the field events they belong to.

To publish a day of events "over a day" without waiting for one, the test's two upstream topics take the
producer's timestamp (CreateTime) and the events carry their simulated publish times: to the worker, the
log then reads exactly as if the day had been appended in real time while it was down.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from chaos.model import Decisions, Model
from chaos.observe import CERTAIN_ALERTS
from projections.query import iso
from schemas.codec import Codec
from streams.domain.hotspots import HotspotPolicy
from streams.domain.sla import SlaTiming
from streams.kafka_io import producer
from streams.reference_files import load_district, load_hotspot_policy
from streams.simulator.config import SimConfig
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.generator import generate
from streams.simulator.publisher import encode
from tests.factories import alarm
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration
CODEC = Codec()
DISTRICT = load_district()
LATENESS_MS = 5_000
START = datetime(2026, 5, 11, 16, 0, tzinfo=UTC)  # midnight in Hezhuang


def _day(seed: int) -> list[SimEvent]:
    config = SimConfig(
        seed=seed,
        start=START,
        days=1.0,
        drain_hours=3.0,
        rate_per_day=300,
        hotspot_calls=20,
        disorder_s=LATENESS_MS / 1000,
        duplicates=0.01,
        malformed=0.002,
    )
    return list(generate(config, DISTRICT))


def _flush(after: datetime) -> list[SimEvent]:
    """Police alarms a day later on enough keys to reach every partition: they move every clock past the day,
    so every decision about it is final (police work has no SLA, no dispatch, no hotspot)."""
    rng = random.Random("flush")
    out = []
    for i in range(40):
        a = alarm(rng, f"FLUSH-{i:02d}", after + timedelta(days=1))
        a.update({"police_matter": "POLICE", "category": "crime.theft", "priority": 2})
        at = int((after + timedelta(days=1)).timestamp() * 1000)
        out.append(SimEvent(at, at, "alarms", a["alarm_id"], "AlarmReceived", a))
    return out


def _appended_as_published(stack: Stack) -> None:
    """The upstream topics keep the producer's timestamp: each event is 'appended' at its simulated publish time."""

    async def alter() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, stack.settings.topic(t), {"message.timestamp.type": "CreateTime"}
                    )
                    for t in ("alarms", "case-events")
                ]
            )
        finally:
            await admin.close()

    asyncio.run(alter())


def _send(stack: Stack, events: list[SimEvent]) -> None:
    async def send() -> None:
        kafka = producer(stack.settings)
        await kafka.start()
        try:
            sent = []
            for e in events:
                key, value = encode(CODEC, e)
                sent.append(await kafka.send(stack.settings.topic(e.topic), value, key=key, timestamp_ms=e.publish_ms))
            await asyncio.gather(*sent)
        finally:
            await kafka.stop()

    asyncio.run(send())


def _reference(events: list[SimEvent], policy: HotspotPolicy) -> Decisions:
    published = [(CODEC.from_json(e.value), e.published_at) for e in events if e.delivery is not Delivery.MALFORMED]
    timing = SlaTiming(lateness=timedelta(milliseconds=LATENESS_MS))
    last = max(at for _, at in published)
    return Model(DISTRICT, timing, policy, frozenset({"RESOLVED"})).live(published, until=last + timedelta(hours=2))


def _normal(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _pipeline(stack: Stack) -> dict[str, Any]:
    breaches = {(c, s, d) for c, s, d in stack.sql("SELECT case_id, stage, deadline FROM sla_breaches")}
    alerts = {tuple(row) for row in stack.sql(CERTAIN_ALERTS)}
    dispatches = {
        row[0]: tuple(row[1:])
        for row in stack.sql(
            "SELECT case_id, street_code, grid_code, team, level, accept_by, contact_by, arrive_by, sla_rule "
            "FROM dispatches"
        )
    }
    outcomes = {
        row[0]: (row[1], row[2], row[3], round(float(row[4]) * 100))
        for row in stack.sql(
            "SELECT stats_key, concluded, success, no_action_needed, compensation FROM v_outcome_daily "
            "WHERE concluded > 0"
        )
    }
    episodes = {
        (h, s)
        for h, s in stack.sql("SELECT hotspot_id, episode_started_at FROM hotspots WHERE type = 'HotspotDetected'")
    }
    orphans = stack.scalar("SELECT count() FROM v_deadletters WHERE error_class = 'Orphan'")
    return {
        "breaches": breaches,
        "alerts": alerts,
        "dispatches": dispatches,
        "outcomes": outcomes,
        "episodes": episodes,
        "orphans": orphans,
        "duplicates": stack.sql(
            "SELECT (SELECT count() = uniqExact(event_id) FROM sla_breaches)"
            " AND (SELECT count() = uniqExact(event_id) FROM sla_alerts)"
        ),
    }


def _expected(model: Decisions) -> dict[str, Any]:
    return {
        "breaches": {(c, s, iso(d)) for c, s, d in model.breaches()},
        # The warnings whose stage nothing meets by their time: the others depend on when a late event was read.
        "alerts": {(c, s, k, iso(d)) for c, s, k, d in model.certain_alerts()},
        "dispatches": {c: tuple(_normal(v) for v in f) for c, f in model.dispatches().items()},
        "outcomes": {k: v for k, v in model.outcomes().items()},
        "episodes": {(h, iso(s)) for h, s in model.episodes()},
        "orphans": 0,
        "duplicates": [[1]],
    }


def _compare(stack: Stack, events: list[SimEvent]) -> None:
    expected = _expected(_reference(events, load_hotspot_policy()))
    assert expected["breaches"] and expected["episodes"] and expected["outcomes"], "the day exercises everything"
    assert {kind for _, _, kind, _ in expected["alerts"]} == {"SlaAtRisk", "SlaOverdue"}
    got = _pipeline(stack)
    for name in expected:
        assert got[name] == expected[name], name


def _settings_env() -> dict[str, str]:
    return {"ALARMFLOW_SLA_LATENESS_MS": str(LATENESS_MS)}


def test_a_day_published_before_the_worker_starts_gives_the_live_runs_decisions(stack: Stack) -> None:
    day = _day(seed=31)
    flush = _flush(max(e.occurred_at for e in day))
    _appended_as_published(stack)
    _send(stack, day + flush)
    stack.start_worker(**_settings_env())
    stack.caught_up(timeout=300)
    _compare(stack, day)


def test_the_worker_stopped_mid_stream_gives_the_live_runs_decisions(stack: Stack) -> None:
    """The worker's own ticks would carry today's clock into a log whose records say May: they are turned off,
    so time moves with the simulated records alone, as it would live."""
    day = _day(seed=32)
    flush = _flush(max(e.occurred_at for e in day))
    half = len(day) // 2
    _appended_as_published(stack)
    env = {**_settings_env(), "ALARMFLOW_TICK_INTERVAL_MS": str(24 * 3600 * 1000)}
    worker = stack.start_worker(**env)
    _send(stack, day[:half])
    stack.caught_up(timeout=300)
    stack.stop(worker, signal.SIGTERM)
    _send(stack, day[half:])  # published during the outage: the dispatches for these alarms come after them
    time.sleep(5)
    stack.start_worker(**env)
    _send(stack, flush)
    stack.caught_up(timeout=300)
    _compare(stack, day)
