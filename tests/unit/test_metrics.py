"""streams.metrics without a broker: how the case engine's state is counted, and the exposition's names and labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.event import Event
from streams import metrics
from streams.domain.engine import Emit
from streams.domain.sla import Case
from streams.settings import Settings

T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
S = timedelta(seconds=1)
DEADLINES = (T0 + 60 * S, T0 + 180 * S, T0 + 480 * S)
# Labels a scrape may carry: bounded sets (no case, event or person).
BOUNDED_LABELS = {
    "group",
    "topic",
    "partition",
    "stage",
    "level",
    "class",
    "source_topic",
    "table",
    "operation",
    "kind",
}


def test_cases_are_counted_by_the_stage_they_wait_for() -> None:
    cases = [
        Case("a", tracked=True, deadlines=DEADLINES),  # waits for acceptance
        Case("b", tracked=True, deadlines=DEADLINES, met=(T0, None, None), decided=(True, False, False)),
        Case("c", tracked=True, deadlines=DEADLINES, met=(T0, T0, None), decided=(True, True, True)),  # ARRIVE breached
        Case("d", tracked=True, deadlines=DEADLINES, met=(T0, T0, T0), decided=(True, True, True)),  # all met
        Case("e", tracked=True, deadlines=DEADLINES, cancelled_at=T0),  # ended: not open
        Case("f", tracked=False),  # police: no SLA
        Case("g", tracked=None),  # no dispatch yet
    ]
    waiting, undecided, first = metrics._count_cases(cases)
    assert waiting == [1, 1, 1, 1]
    assert undecided == [1, 2, 2]  # a: all three; b: contact and arrive; c: arrive decided already
    assert first == DEADLINES[0]  # a's acceptance
    assert metrics._count_cases(cases[3:]) == ([0, 0, 0, 1], [0, 0, 0], None)


def _event(kind: str, **fields: object) -> Event:
    return Event(kind, {"event_id": "e", "occurred_at": T0, "source": "test", **fields})


def test_an_agent_batch_counts_outputs_breaches_escalations_and_dead_letters() -> None:
    before = metrics.SOURCES.tallies
    metrics.SOURCES.tallies = metrics._Tallies()
    try:
        metrics.agent_batch(
            [
                Emit("case-events", _event("CaseDispatched")),
                Emit("sla-breaches", _event("SlaBreached", stage="ACCEPT", deadline=T0)),
                Emit("case-events", _event("CaseReassigned", level="STREET_POOL")),
                Emit("routing", _event("CaseReassigned", level="STREET_POOL")),  # the same escalation, for the load
                Emit("deadletter", _event("DeadLettered", error_class="Orphan", source_topic="x.case-events")),
            ]
        )
        t = metrics.SOURCES.tallies
        assert t.dispatches == 1
        assert t.breaches == {"ACCEPT": 1, "CONTACT": 0, "ARRIVE": 0}
        assert t.escalations[("ACCEPT", "STREET_POOL")] == 1 and sum(t.escalations.values()) == 1
        assert t.dead_letters == {("Orphan", "x.case-events"): 1}
        assert t.records_out == {"case-events": 2, "sla-breaches": 1, "routing": 1, "deadletter": 1}
    finally:
        metrics.SOURCES.tallies = before


def test_the_exposition_parses_with_conventional_names_and_bounded_labels() -> None:
    settings = Settings()
    lag = metrics.LagReader(settings.kafka_bootstrap, settings.consumer_groups())
    tp = TopicPartition(settings.topic("alarms"), 0)
    lag.ends, lag.committed = {tp: 10}, {settings.app_id: {tp: 7}, f"{settings.app_id}-projector": {}}
    saved = metrics.SOURCES
    metrics.SOURCES = metrics._Sources(settings=settings, lag=lag)
    try:
        text = metrics.generate_latest(metrics.REGISTRY).decode()
    finally:
        metrics.SOURCES = saved
    assert 'alarmflow_consumer_lag_records{group="alarmflow",partition="0",topic="alarmflow.alarms"} 3.0' in text
    assert (
        'alarmflow_consumer_lag_records{group="alarmflow-projector",partition="0",topic="alarmflow.alarms"} 10.0'
        in text
    )
    families = list(text_string_to_metric_families(text))
    assert families
    for family in families:
        assert family.name.startswith(("alarmflow_", "process_", "python_")), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= BOUNDED_LABELS | {
                "implementation",
                "major",
                "minor",
                "patchlevel",
                "version",
            }
