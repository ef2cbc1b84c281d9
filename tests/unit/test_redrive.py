"""Re-drive planning: selection, one step per origin, nothing twice. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.codec import Codec
from streams import redrive
from streams.redrive import Done, Filters, Letter, Loaded

T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)


def letter(origin: str, error_class: str = "UnknownCategory", at: int = 0, topic: str = "af.alarms") -> Letter:
    return Letter(
        origin,
        f"id-{origin}",
        error_class,
        "why",
        topic,
        b"k",
        b"bytes",
        f"af.deadletter/0/{at}",
        T0 + timedelta(minutes=at),
    )


def test_each_origin_is_planned_once_and_a_done_one_is_skipped_with_the_reason() -> None:
    loaded = Loaded(
        [letter("af.alarms/0/1"), letter("af.alarms/0/1", at=1), letter("af.alarms/0/2", at=2)],
        {"af.alarms/0/2": Done("af.alarms/0/2", T0, "af.alarms/1/9")},
    )
    steps = redrive.plan(loaded, Filters(), {})
    assert [(s.letter.origin, s.send) for s in steps] == [("af.alarms/0/1", True), ("af.alarms/0/2", False)]
    assert "already re-driven" in steps[1].why and "af.alarms/1/9" in steps[1].why


def test_a_copy_processed_meanwhile_is_skipped() -> None:
    steps = redrive.plan(Loaded([letter("af.alarms/0/1")]), Filters(), {"af.alarms/0/1": "af.alarms/0/7"})
    assert [(s.send, s.why) for s in steps] == [
        (False, "a copy was processed meanwhile at af.alarms/0/7 (re-sent upstream): nothing to do")
    ]


def test_filters_select_by_class_topic_time_and_id() -> None:
    letters = [
        letter("af.alarms/0/1", "UnknownCategory", at=0),
        letter("af.case-events/0/1", "Orphan", at=10, topic="af.case-events"),
        letter("af.alarms/0/3", "MissingField", at=20),
    ]
    loaded = Loaded(letters)

    def chosen(f: Filters) -> list[str]:
        return [s.letter.origin for s in redrive.plan(loaded, f, {})]

    assert chosen(Filters()) == [x.origin for x in letters]
    assert chosen(Filters(classes=frozenset({"Orphan"}))) == ["af.case-events/0/1"]
    assert chosen(Filters(source_topics=frozenset({"af.alarms"}))) == ["af.alarms/0/1", "af.alarms/0/3"]
    assert chosen(Filters(since=T0 + timedelta(minutes=10))) == ["af.case-events/0/1", "af.alarms/0/3"]
    assert chosen(Filters(ids=frozenset({"id-af.alarms/0/3", "af.alarms/0/1"}))) == ["af.alarms/0/1", "af.alarms/0/3"]


def test_the_redrive_record_is_deterministic_and_encodable() -> None:
    one = letter("af.alarms/0/1", at=4)
    a = redrive.redriven_event(one, ("af.alarms", 2, 40), T0)
    b = redrive.redriven_event(one, ("af.alarms", 2, 40), T0 + timedelta(seconds=5))
    assert a.event_id == b.event_id != redrive.redriven_event(one, ("af.alarms", 2, 41), T0).event_id
    assert (a.fields["deadletter_topic"], a.fields["deadletter_offset"], a.fields["redrive_offset"]) == (
        "af.deadletter",
        4,
        40,
    )
    codec = Codec()
    assert codec.decode(codec.encode(a)).fields["origin"] == "af.alarms/0/1"
    assert dict(redrive.headers(one, T0))[redrive.HEADER_OF] == b"af.alarms/0/1"
