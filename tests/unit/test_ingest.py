"""The ingest gate: every poison class, the dead-letter record, and phone redaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projections.rows import RowContext, event_row
from schemas.codec import Codec
from schemas.errors import POISON_CLASSES, WeakKey
from schemas.privacy import Redactor, mask_phone
from schemas.validation import Limits
from streams.ingest import Accepted, Message, Rejected, classify, dead_letter

CODEC = Codec()
NOW = datetime(2026, 5, 12, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_bytes=2048)
REDACTOR = Redactor(b"test-key-0123456789abcdef")


def contacted(**extra: Any) -> dict[str, Any]:
    obj = {
        "type": "PartyContacted",
        "event_id": "7b0a4c1e-6a3e-4a55-9a53-0d8f1a2b3c4d",
        "occurred_at": "2026-05-12T20:00:00+08:00",
        "source": "gridapp",
        "case_id": "C1",
        "worker_id": "GW-01",
        "method": "PHONE",
    }
    obj.update(extra)
    return obj


def alarm(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "AlarmReceived",
        "event_id": "7b0a4c1e-6a3e-4a55-9a53-0d8f1a2b3c4d",
        "occurred_at": "2026-05-12T20:00:00+08:00",
        "source": "cad110",
        "alarm_id": "A1",
        "channel": "CALL_110",
        "category": "noise.night",
        "priority": 3,
        "location": {"address": "x"},
        "description": "",
    }
    obj.update(extra)
    return obj


def wire(obj: dict[str, Any]) -> bytes:
    return CODEC.encode(CODEC.from_json(obj))


def message(value: bytes, key: bytes | None = b"C1", offset: int = 7) -> Message:
    return Message("alarmflow.case-events", 2, offset, key, value, NOW)


def _enum_out_of_range() -> bytes:
    good = wire(contacted())
    assert good[-1] == 0  # PHONE is symbol 0, the last field
    return good[:-1] + b"\x0e"  # zig-zag 7: no such symbol


POISON = [
    ("Undecodable", b"hello, not avro"),
    ("Undecodable", wire(contacted())[:-3]),
    ("Undecodable", wire(contacted()) + b"\x00\x00"),
    ("UnknownSchema", b"\xc3\x01" + bytes(8) + b"\x00"),
    ("MissingField", wire(contacted(case_id=""))),
    ("MissingField", wire(contacted(worker_id=""))),
    ("InvalidEnum", _enum_out_of_range()),
    ("InvalidValue", wire(contacted(event_id="not-a-uuid"))),
    ("InvalidTime", wire(contacted(occurred_at="1999-12-31T23:59:59+08:00"))),
    ("InvalidTime", wire(contacted(occurred_at=(NOW + timedelta(hours=25)).isoformat()))),
    ("TooLarge", wire(contacted(worker_id="W" * 4000))),
    ("KeyMismatch", wire(contacted(case_id="C2"))),
    ("WrongTopic", wire(alarm(alarm_id="C1"))),  # an alarm published on case-events
]


@pytest.mark.parametrize(("error_class", "value"), POISON)
def test_each_poison_kind_is_rejected_with_its_class(error_class: str, value: bytes) -> None:
    outcome = classify(CODEC, LIMITS, message(value))
    assert isinstance(outcome, Rejected), outcome
    assert outcome.error.error_class == error_class
    assert outcome.error.reason


def test_every_poison_class_is_exercised() -> None:
    assert {c for c, _ in POISON} == {cls.error_class for cls in POISON_CLASSES}


def test_a_message_without_key_is_rejected() -> None:
    outcome = classify(CODEC, LIMITS, message(wire(contacted()), key=None))
    assert isinstance(outcome, Rejected) and outcome.error.error_class == "KeyMismatch"
    assert "no key" in outcome.error.reason


def test_good_events_pass_including_the_edges() -> None:
    at_limit = (NOW + timedelta(hours=24)).isoformat()
    for obj in (contacted(), contacted(occurred_at=at_limit), contacted(occurred_at="2000-01-01T00:00:00Z")):
        assert isinstance(classify(CODEC, LIMITS, message(wire(obj))), Accepted)


def test_out_of_range_values_are_invalid() -> None:
    out_of_range = alarm(priority=9, location={"address": "x", "lat": 91.0})
    outcome = classify(CODEC, LIMITS, Message("alarmflow.alarms", 0, 1, b"A1", wire(out_of_range), NOW))
    assert isinstance(outcome, Rejected) and outcome.error.error_class == "InvalidValue"
    assert "priority" in outcome.error.reason


def test_dead_letter_record_keeps_bytes_coordinates_class_and_reason() -> None:
    value = b"\xc3\x01garbage!!"
    rejected = classify(CODEC, LIMITS, message(value, offset=42))
    assert isinstance(rejected, Rejected)
    record = dead_letter(rejected)
    back = CODEC.decode(CODEC.encode(record))
    assert back.fields["payload"] == value
    assert back.fields["origin"] == "alarmflow.case-events/2/42"
    assert (back.fields["source_topic"], back.fields["source_partition"], back.fields["source_offset"]) == (
        "alarmflow.case-events",
        2,
        42,
    )
    assert back.fields["error_class"] == "UnknownSchema"
    assert "fingerprint" in back.fields["reason"]
    assert dead_letter(rejected).event_id == record.event_id  # a re-delivery is recognisable


def test_phone_is_tokenised_and_masked_never_stored_raw() -> None:
    with_phone = alarm(caller_phone="138-1234-5678")
    outcome = classify(CODEC, LIMITS, Message("alarmflow.alarms", 0, 1, b"A1", wire(with_phone), NOW))
    assert isinstance(outcome, Accepted)
    row = event_row(outcome.event, ("alarmflow.alarms", 0, 1), RowContext(CODEC, REDACTOR, NOW))
    payload = json.loads(str(row[7]))
    assert "caller_phone" not in payload
    assert payload["caller_phone_masked"] == "138****5678"
    assert payload["caller_phone_token"] == REDACTOR.token("13812345678")
    assert "12345678" not in "".join(str(v) for v in row)
    assert REDACTOR.token("+86 138 1234 5678") == payload["caller_phone_token"]
    assert Redactor(b"another-key-0123456789").token("13812345678") != payload["caller_phone_token"]


@pytest.mark.parametrize(
    ("phone", "masked"), [("13812341234", "138****1234"), ("+86 138 1234 1234", "138****1234"), ("110", "*10")]
)
def test_mask(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_short_keys_are_refused() -> None:
    with pytest.raises(WeakKey, match="at least 16 bytes, got 5"):
        Redactor(b"short")
