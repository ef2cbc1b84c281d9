"""Outcomes and hotspots on the real broker: a generated month, then `alarmflow verify` finds no difference
between the streamed aggregates and a batch recount, also after a kill -9 and after a replay."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from datetime import datetime, timedelta

import pytest

from tests.factories import alarm, month
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration
N_CASES = 600


def _totals(stack: Stack) -> list[list[object]]:
    return stack.sql(
        "SELECT stats_key, concluded, success, no_action_needed, compensation, duration_sum_ms "
        "FROM v_outcome_daily ORDER BY stats_key"
    )


def _episodes(stack: Stack) -> list[list[object]]:
    return stack.sql(
        "SELECT hotspot_id, started_at, peak, reports, cooled_at FROM v_hotspot_history ORDER BY hotspot_id, started_at"
    )


def _month(seed: int) -> list[dict[str, object]]:
    """The month, then alarms a day later on enough keys to reach every alarms partition, each at a place
    of its own: they move every partition's watermark past the month, so every hotspot decision is final
    (each counts 1, far under any threshold)."""
    events = month(N_CASES, seed=seed)
    last = max(datetime.fromisoformat(str(e["occurred_at"])) for e in events)
    rng = random.Random(f"flush/{seed}")  # not the month's stream: its event ids would repeat the month's
    for i in range(40):
        flush = alarm(rng, f"FLUSH-{seed}-{i:02d}", last + timedelta(days=1))
        flush.update({"category": "dispute.family", "police_matter": "NON_POLICE", "priority": 3})
        flush["location"] = {**flush["location"], "address": f"flush {i}", "lat": None, "lon": None}
        events.append(flush)
    return events


LOG = "SELECT count(), uniqExact(event_id), countIf(place_key IS NOT NULL) FROM triage"
OVERALL = (
    "SELECT if(sum(concluded) - sum(no_action_needed) = 0, NULL, "
    "sum(success) / (sum(concluded) - sum(no_action_needed))) FROM v_outcome_daily"
)


def test_a_month_of_outcomes_and_hotspots_equals_the_batch_recount_also_after_a_replay(stack: Stack) -> None:
    events = _month(seed=7)
    worker = stack.start_worker()
    stack.publish(events)
    stack.caught_up()
    stack.assert_verified()
    assert stack.scalar("SELECT sum(concluded) FROM v_outcome_daily") == N_CASES  # each case once
    corrected = stack.scalar(
        "SELECT countIf(n > 1) FROM (SELECT case_id, count() AS n FROM lifecycle "
        "WHERE type = 'MediationConcluded' GROUP BY case_id)"
    )
    assert corrected > 0, "the generated month has corrections from the field"
    assert stack.scalar("SELECT countIf(type = 'HotspotDetected') FROM hotspots") > 0
    assert stack.scalar("SELECT count() FROM cases WHERE repeat_of IS NOT NULL") > 0
    assert 0.5 < stack.scalar(OVERALL) < 1.0
    _check_agenda_and_report(stack)

    # a replay into a fresh database: the projector rewound, the tables rebuilt from the topics
    before, episodes, log = _totals(stack), _episodes(stack), stack.sql(LOG)
    stack.stop(worker)
    stack.cli_out("reset-offsets", "--yes")
    shutil.rmtree(stack.settings.var_dir / "clickhouse")
    stack.start_worker()
    stack.caught_up()
    assert stack.sql(LOG) == log
    assert _totals(stack) == before
    assert _episodes(stack) == episodes
    stack.assert_verified()


def _check_agenda_and_report(stack: Stack) -> None:
    """The meeting's agenda for a day in the month: hot places with their force, count, trend and cases."""
    agenda = json.loads(stack.cli_out("hotspots", "agenda", "--date", "2026-05-20", "--format", "json"))
    active = [a for a in agenda if a["status"] in ("NEW", "ACTIVE")]
    assert active, agenda
    for item in active:
        assert item["count"] >= item["threshold"] and item["owning_force"] and item["sample_cases"]
        assert item["trend"] in ("rising", "falling", "steady")
    assert any(a["place"] == "云上澜苑" for a in active)
    page = stack.settings.var_dir / "report.html"
    text = stack.cli_out("report", "--date", "2026-05-20", "--html", str(page))
    assert "Success rate" in text and "Hotspot agenda for 2026-05-20" in text
    assert page.read_text(encoding="utf-8").count("<svg") == 4


def test_kill_minus_9_mid_stream_then_restart_still_equals_the_batch_recount(stack: Stack) -> None:
    events = _month(seed=11)
    worker = stack.start_worker()
    stack.publish(events)
    deadline = time.monotonic() + 120
    while stack.scalar("SELECT count() FROM outcome_daily") < 50:
        assert time.monotonic() < deadline, "no outcome statistics at all"
        time.sleep(0.2)
    stack.stop(worker, signal.SIGKILL)
    stack.start_worker()
    stack.caught_up(timeout=240)
    stack.assert_verified()
    assert stack.scalar("SELECT sum(concluded) FROM v_outcome_daily") == N_CASES
    # nothing doubled: each aggregate version is one row, each hotspot change one row
    assert stack.sql("SELECT count() = uniqExact(event_id) FROM outcome_daily") == [[1]]
    assert stack.sql("SELECT count() = uniqExact(event_id) FROM hotspots") == [[1]]
