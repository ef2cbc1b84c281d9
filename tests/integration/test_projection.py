"""The foundation on real parts: every event in ClickHouse exactly once, counted without FINAL."""

from __future__ import annotations

import asyncio
import json
import signal
import time

from streams.kafka_admin import reset_offsets
from tests.factories import stream
from tests.integration.conftest import CODEC, Stack

# Upstream events only: the worker's own derived events (triage, dispatch) land in the log too.
COUNTS = (
    "SELECT count(), uniqExact(event_id), uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM events "
    "WHERE source != 'alarmflow.worker'"
)


def assert_log_invariants(stack: Stack) -> None:
    """Whatever the crashes: one row per Kafka message, and analysts see each event_id once."""
    rows, coords = stack.sql("SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM events")[0]
    assert rows == coords
    unique, total = stack.sql("SELECT uniqExact(event_id), count() FROM v_events")[0]
    assert unique == total


def test_every_event_lands_exactly_once_and_upstream_duplicates_count_once(stack: Stack) -> None:
    events = stream(50, seed=11)
    n = stack.publish(events)
    assert n == len(events) == 300
    stack.start_worker()
    stack.caught_up()
    assert stack.sql(COUNTS) == [[n, n, n]]
    by_type = dict(stack.sql("SELECT type, events FROM v_event_counts"))
    upstream = [
        "AlarmReceived",
        "CaseClosed",
        "InstructionAccepted",
        "MediationConcluded",
        "PartyContacted",
        "ResponderArrived",
    ]
    assert {t: by_type[t] for t in upstream} == dict.fromkeys(upstream, 50)
    assert by_type["AlarmTriaged"] == 50
    assert_log_invariants(stack)

    stack.publish(events)  # the same file again: same event_ids at new offsets
    stack.caught_up()
    assert stack.sql(COUNTS) == [[2 * n, n, 2 * n]]  # the raw log keeps each delivery...
    assert stack.scalar("SELECT count() FROM v_events WHERE source != 'alarmflow.worker'") == n  # ...once
    assert stack.scalar("SELECT count() FROM v_upstream_duplicates WHERE type != 'AlarmTriaged'") == n, stack.sql(
        "SELECT type, count() FROM v_upstream_duplicates GROUP BY type"
    )
    # the same counts for every type the second delivery could double (hotspot decisions and breaches
    # follow the clock, so they may still be arriving)
    again = dict(stack.sql("SELECT type, events FROM v_event_counts"))
    assert {t: again[t] for t in [*upstream, "AlarmTriaged"]} == {t: by_type[t] for t in [*upstream, "AlarmTriaged"]}
    assert_log_invariants(stack)


def test_replay_from_offset_zero_into_the_same_database_adds_nothing(stack: Stack) -> None:
    n = stack.publish(stream(40, seed=12))
    worker = stack.start_worker()
    stack.caught_up()
    assert stack.sql(COUNTS) == [[n, n, n]]
    stack.stop(worker)
    for group, topics in stack.settings.consumer_groups().items():  # the agents too: the harder case
        asyncio.run(reset_offsets(stack.settings.kafka_bootstrap, group, topics))
    stack.start_worker()
    stack.caught_up()
    assert stack.sql(COUNTS) == [[n, n, n]]
    assert_log_invariants(stack)


def test_kill_9_mid_stream_then_restart_still_exactly_once(stack: Stack) -> None:
    n = stack.publish(stream(2500, seed=13))  # 15,000 events
    worker = stack.start_worker(ALARMFLOW_BATCH_MAX="300")
    deadline = time.monotonic() + 120
    while (rows := stack.scalar("SELECT count() FROM events WHERE source != 'alarmflow.worker'")) < n // 5:
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert rows < n, "killed too late to test anything: the stream was already done"
    stack.start_worker(ALARMFLOW_BATCH_MAX="300")
    stack.caught_up()
    assert stack.sql(COUNTS) == [[n, n, n]]
    assert_log_invariants(stack)
    alarms = n // 6
    assert stack.sql("SELECT count(), uniqExact(case_id) FROM triage") == [[alarms, alarms]]
    dispatched, cases = stack.sql("SELECT count(), uniqExact(case_id) FROM dispatches")[0]
    assert dispatched == cases > 0


def test_poison_goes_to_the_dead_letter_topic_and_the_stream_keeps_flowing(stack: Stack) -> None:
    good = stream(30, seed=14)
    case = next(e for e in good if e["type"] == "PartyContacted")
    valid = CODEC.encode(CODEC.from_json(case))
    poison: list[tuple[str, bytes | None, bytes]] = [
        ("Undecodable", b"C1", b'{"not": "avro"}'),
        ("UnknownSchema", b"C1", b"\xc3\x01" + b"\xff" * 8 + b"\x02"),
        ("MissingField", b"", CODEC.encode(CODEC.from_json({**case, "case_id": ""}))),
        ("InvalidEnum", case["case_id"].encode(), valid[:-1] + b"\x0e"),
        (
            "InvalidTime",
            case["case_id"].encode(),
            CODEC.encode(CODEC.from_json({**case, "occurred_at": "1999-01-01T00:00:00+08:00"})),
        ),
        (
            "InvalidTime",
            case["case_id"].encode(),
            CODEC.encode(CODEC.from_json({**case, "occurred_at": "2099-01-01T00:00:00+08:00"})),
        ),
        ("TooLarge", case["case_id"].encode(), valid + b"\x00" * 70_000),
    ]
    stack.start_worker()
    half = len(good) // 2
    stack.publish(good[:half])
    stack.send_raw("case-events", [(k, v) for _, k, v in poison])
    stack.publish(good[half:])
    stack.caught_up()

    assert stack.sql(COUNTS) == [[len(good)] * 3]
    letters = [CODEC.decode(m.value).fields for m in stack.read("deadletter")]
    by_origin = {f["origin"]: f for f in letters}
    assert len(by_origin) == len(poison)
    sent_values = {v for _, _, v in poison}
    assert {f["payload"] for f in by_origin.values()} == sent_values
    assert sorted(f["error_class"] for f in by_origin.values()) == sorted(c for c, _, _ in poison)
    for f in by_origin.values():
        assert f["reason"] and f["source_topic"] == stack.settings.topic("case-events")
        assert f["origin"] == f"{f['source_topic']}/{f['source_partition']}/{f['source_offset']}"
    projected = stack.sql("SELECT error_class, count() FROM v_deadletters GROUP BY error_class ORDER BY error_class")
    assert projected == sorted([[c, n] for c, n in _count([c for c, _, _ in poison]).items()])
    assert stack.scalar("SELECT count() FROM v_deadletters WHERE reason = ''") == 0


def _count(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def test_raw_phone_numbers_never_reach_clickhouse(stack: Stack) -> None:
    events = stream(20, seed=15)
    phones = [e["caller_phone"] for e in events if e["type"] == "AlarmReceived"]
    stack.publish(events)
    stack.start_worker()
    stack.caught_up()
    for phone in phones:
        tail = phone[-8:]
        hits = stack.scalar(
            "SELECT count() FROM events WHERE position(payload, {p:String}) > 0 OR position(payload, {t:String}) > 0",
            p=phone,
            t=tail,
        )
        assert hits == 0, phone
    payloads = [json.loads(r[0]) for r in stack.sql("SELECT payload FROM events WHERE type = 'AlarmReceived'")]
    assert len(payloads) == len(phones)
    assert all(len(p["caller_phone_token"]) == 32 and "****" in p["caller_phone_masked"] for p in payloads)


def test_queries_through_the_worker_are_read_only(stack: Stack) -> None:
    stack.publish(stream(2, seed=16))
    stack.start_worker()
    stack.caught_up()
    from projections.errors import QueryRejected
    from streams.query_client import query

    try:
        query(stack.settings, "INSERT INTO events (event_id) VALUES ('x')")
    except QueryRejected as exc:
        assert "readonly" in str(exc).lower()
    else:
        raise AssertionError("a write went through the read-only endpoint")
    assert stack.scalar("SELECT count() FROM events WHERE source != 'alarmflow.worker'") == 12
