"""The SLA engine on the real broker: live detection, kill -9, a rebalance."""

from __future__ import annotations

import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.codec import Codec
from tests.factories import alarm, case_events
from tests.integration.conftest import Stack, free_port

CODEC = Codec()


def _noise_alarm(case_id: str, at: datetime) -> dict[str, Any]:
    a = alarm(random.Random(case_id), case_id, at)
    a.update({"category": "noise.renovation", "police_matter": "NON_POLICE", "priority": 3})
    a["location"] = {"address": "云上澜苑 3幢", "lat": None, "lon": None, "street_code": "330114005", "grid_code": None}
    return a


def test_live_a_missing_acceptance_is_reported_right_after_deadline_plus_lateness(
    stack: Stack, short_district: Path
) -> None:
    stack.start_worker(ALARMFLOW_DISTRICT_DIR=str(short_district), ALARMFLOW_SLA_LATENESS_MS="1000")
    stack.publish([_noise_alarm("LIVE-1", datetime.now(UTC))])
    deadline_seen = time.monotonic() + 60
    letters: list[Any] = []
    while time.monotonic() < deadline_seen and not letters:
        letters = [m for m in stack.read("sla-breaches") if CODEC.decode(m.value).fields["stage"] == "ACCEPT"]
        time.sleep(0.5)
    assert letters, "no ACCEPT breach within 60 s"
    breach = CODEC.decode(letters[0].value).fields
    published_after = (letters[0].timestamp - breach["deadline"]).total_seconds()
    # the breach is certain once the watermark (log time minus 1 s lateness) passes the deadline: never
    # earlier. How soon after is a latency, measured by the benchmark, not asserted on a shared machine.
    assert published_after >= 1.0, published_after
    assert breach["case_id"] == "LIVE-1" and breach["late_by_ms"] is None
    stack.caught_up()
    assert stack.sql("SELECT count(), uniqExact(case_id, stage) FROM sla_breaches WHERE stage = 'ACCEPT'") == [[1, 1]]
    assert breach["sla_rule"] == "default"  # the test's district: a default of 4/8/12 s, no overrides
    assert stack.sql("SELECT DISTINCT sla_rule FROM sla_breaches") == [["default"]]
    reassigned = stack.sql("SELECT level FROM reassignments WHERE case_id = 'LIVE-1' ORDER BY step")
    assert reassigned and reassigned[-1][0] in ("STREET_POOL", "COMMAND_ROOM", "GRID")


def _month(n_cases: int, seed: int) -> list[dict[str, Any]]:
    """Alarms with their field events, some slow, some missing: a backfill with many breaches."""
    rng = random.Random(seed)
    at = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for i in range(n_cases):
        at += timedelta(seconds=rng.randint(30, 900))
        case = f"M{seed}-{i:05d}"
        out.append(_noise_alarm(case, at))
        events = case_events(rng, case, at)
        out.extend(e for e in events if rng.random() < 0.9)
    return out


def _breach_counts(stack: Stack) -> tuple[int, int]:
    rows, pairs = stack.sql("SELECT count(), uniqExact(case_id, stage) FROM sla_breaches")[0]
    return int(rows), int(pairs)


def test_kill_9_mid_stream_then_restart_each_breach_once(stack: Stack) -> None:
    events = _month(600, seed=21)
    worker = stack.start_worker()
    stack.publish(events)
    deadline = time.monotonic() + 120
    while stack.scalar("SELECT count() FROM sla_breaches") < 20:
        assert time.monotonic() < deadline, "no breaches at all"
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    stack.start_worker()
    stack.caught_up(timeout=240)
    rows, pairs = _breach_counts(stack)
    assert rows == pairs > 20
    topic = {
        (CODEC.decode(m.value).fields["case_id"], CODEC.decode(m.value).fields["stage"])
        for m in stack.read("sla-breaches")
    }
    assert len(topic) == pairs  # every breach published is projected, once


def test_two_workers_with_a_rebalance_report_each_breach_once(stack: Stack) -> None:
    events = _month(400, seed=22)
    stack.start_worker()
    half = len(events) // 2
    stack.publish(events[:half])
    # a second worker takes half of the partitions: agents only (one process owns the database)
    stack.start_worker(
        ALARMFLOW_ROLE="agents",
        ALARMFLOW_WEB_PORT=str(free_port()),
        ALARMFLOW_VAR_DIR=str(stack.settings.var_dir / "second"),
    )
    stack.publish(events[half:])
    stack.caught_up(timeout=240)
    rows, pairs = _breach_counts(stack)
    assert rows == pairs > 10
    published = [CODEC.decode(m.value).fields for m in stack.read("sla-breaches")]
    assert len({(f["case_id"], f["stage"]) for f in published}) == pairs
    assert len({f["event_id"] for f in published}) == pairs  # a repeat after the move carries the same id


def test_the_roles_in_separate_processes_agents_and_a_projector_report_each_breach_once(stack: Stack) -> None:
    """The deployment of deploy/k8s and of the split benchmark: a projector-only process holds the database and an
    agents-only process runs the agents. The projector's Faust app once joined the agents' consumer group, was
    assigned agent partitions it had no agent for, and stalled the pipeline."""
    events = _month(300, seed=24)
    stack.start_worker(ALARMFLOW_ROLE="projector")
    stack.start_worker(
        ALARMFLOW_ROLE="agents",
        ALARMFLOW_WEB_PORT=str(free_port()),
        ALARMFLOW_VAR_DIR=str(stack.settings.var_dir / "agents"),
    )
    stack.publish(events)
    stack.caught_up(timeout=240)
    rows, pairs = _breach_counts(stack)
    assert rows == pairs > 10
    assert stack.scalar("SELECT count() FROM outcome_daily") > 0  # the outcomes agent's output, projected


def _flush(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alarms a day after the last event, on enough keys to reach every partition: they move each
    partition's watermark past every earlier deadline, so the breach set is final, not just so far."""
    last = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    return [_noise_alarm(f"FLUSH-{i:02d}", last + timedelta(days=1)) for i in range(40)]


BREACHES = "SELECT case_id, stage, toString(deadline) FROM sla_breaches ORDER BY case_id, stage"


def test_a_replay_into_a_fresh_deployment_reproduces_the_breach_set(stack: Stack, tmp_path: Path) -> None:
    events = _month(300, seed=23)
    events += _flush(events)
    first = stack.start_worker()
    stack.publish(events)
    stack.caught_up(timeout=240)
    before = stack.sql(BREACHES)
    assert len(before) > 10
    stack.stop(first)
    # a new deployment: fresh consumer groups, fresh tables, fresh database, the same topics (which
    # now also carry the first deployment's derived events; the new one re-publishes its own)
    (tmp_path / "replay").mkdir()
    stack.env.update(ALARMFLOW_APP_ID=f"{stack.settings.app_id}-again", ALARMFLOW_VAR_DIR=str(tmp_path / "replay"))
    stack.settings = stack.settings.__class__.from_env(stack.env)
    stack.start_worker()
    stack.caught_up(timeout=240)
    assert stack.sql(BREACHES) == before


def _police_flush(at: datetime, tag: str) -> list[dict[str, Any]]:
    """Police alarms on enough keys to reach every partition: they move every clock to ``at`` and add nothing else
    (no SLA, no dispatch, no hotspot)."""
    out = []
    for i in range(40):
        a = _noise_alarm(f"{tag}-{i:02d}", at)
        a.update({"police_matter": "POLICE", "category": "crime.theft"})
        out.append(a)
    return out


def _triaged_review(case_id: str, at: datetime) -> dict[str, Any]:
    a = _noise_alarm(case_id, at)
    a["category"] = "dispute.family"  # a REVIEW category: the command room decides, nothing is dispatched
    return a


def test_refused_and_untracked_field_events_are_decided_from_the_log_and_never_counted_as_accepted(
    stack: Stack,
) -> None:
    """A REVIEW case's field events are accepted untracked (no dead letter, however long the run); a field event
    for a case that never existed, and a correction for a case forgotten after the retention, are dead-lettered
    as Orphan, stay out of `cases`, and `verify` stays at 0."""
    rng = random.Random(5)
    at = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    events = [_noise_alarm("KEEP", at), *case_events(rng, "KEEP", at)]
    review = _triaged_review("REVIEW-1", at + timedelta(minutes=1))
    events += [review, *case_events(rng, "REVIEW-1", at + timedelta(minutes=1))[:2]]
    ghost = case_events(rng, "GHOST", at + timedelta(minutes=2))[0]  # a case nobody ever reported
    events.append(ghost)
    # An orphan also waits until every alarm appended up to the lateness after it has been routed: a short
    # lateness keeps that wait short.
    stack.start_worker(ALARMFLOW_RETENTION_H="1", ALARMFLOW_SLA_LATENESS_MS="2000")
    stack.publish(events + _police_flush(at + timedelta(days=1), "FLUSH"))
    stack.caught_up()
    conclusion = next(e for e in events if e["type"] == "MediationConcluded" and e["case_id"] == "KEEP")
    late = {**conclusion, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "outcome": "UNRESOLVED"}
    late["occurred_at"] = (datetime.fromisoformat(conclusion["occurred_at"]) + timedelta(hours=30)).isoformat()
    stack.publish(
        [late, *_police_flush(at + timedelta(days=3), "FLUSH2")]
    )  # 30 hours after it was concluded: KEEP is long forgotten
    stack.caught_up()
    query = "SELECT origin FROM v_deadletters WHERE error_class = 'Orphan' ORDER BY origin"
    deadline = time.monotonic() + 60
    while len(orphans := stack.sql(query)) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    topic = stack.settings.topic("case-events")
    assert len(orphans) == 2 and all(o[0].startswith(f"{topic}/") for o in orphans), orphans
    refused = stack.sql(
        "SELECT count() FROM lifecycle WHERE event_id IN {ids:Array(String)}", ids=[ghost["event_id"], late["event_id"]]
    )
    assert refused == [[2]]  # the raw projection keeps what arrived...
    assert stack.sql(
        "SELECT count() FROM v_lifecycle WHERE event_id IN {ids:Array(String)}",
        ids=[ghost["event_id"], late["event_id"]],
    ) == [[0]]  # ...the accepted view does not
    assert stack.sql("SELECT outcome FROM cases WHERE case_id = 'KEEP'") == [["RESOLVED"]]
    assert (
        stack.scalar("SELECT count() FROM v_deadletters WHERE error_class = 'Orphan' AND reason LIKE '%REVIEW-1%'") == 0
    )
    done = stack.verify()
    assert done.returncode == 0 and "0 difference(s) in total" in done.stdout, done.stdout + done.stderr
