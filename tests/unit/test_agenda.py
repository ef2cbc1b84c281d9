"""The engines' deadline index (Agenda): the same answers as a plain dict of due times, in a heap whose size stays
bounded by the number of keys however often they are set. No Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.engine import Agenda

T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)
S = timedelta(seconds=1)

# (op, key, seconds): set a key to a time, clear it, or pop everything before a time
OPS = st.lists(
    st.tuples(st.sampled_from(["set", "clear", "pop"]), st.integers(0, 30), st.integers(0, 10_000)),
    max_size=600,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_the_agenda_answers_like_a_dict_and_its_heap_stays_bounded_by_its_keys(ops: list[tuple[str, int, int]]) -> None:
    agenda, reference = Agenda(), dict[str, datetime]()
    for op, k, seconds in ops:
        key, at = f"k{k}", T0 + seconds * S
        if op == "set":
            agenda.set(key, at)
            reference[key] = at
        elif op == "clear":
            agenda.set(key, None)
            reference.pop(key, None)
        else:
            due = sorted((t, key) for key, t in reference.items() if t < at)
            assert agenda.pop_before(at) == [key for _, key in due]
            for _, key in due:
                del reference[key]
        assert len(agenda) == len(reference)
        assert agenda.stored <= 2 * len(reference) + Agenda.SLACK
        assert agenda.first() == min(reference.values(), default=None)


def test_a_key_moved_later_on_every_update_leaves_no_trail() -> None:
    """The profile's case: a settled case's next time (its retention) moves later with each of its events,
    and nothing pops the old entries until the clock reaches them."""
    agenda = Agenda()
    for update in range(10_000):
        for case in range(20):
            agenda.set(f"c{case}", T0 + update * S)
    assert len(agenda) == 20
    assert agenda.stored <= 2 * 20 + Agenda.SLACK  # without the bound: 200,000 entries
    assert agenda.pop_before(T0 + 10_000 * S) == sorted(f"c{case}" for case in range(20))
    assert agenda.stored == 0


def test_cleared_keys_leave_no_trail() -> None:
    agenda = Agenda()
    for n in range(5_000):
        agenda.set(f"gone{n}", T0 + n * S)
        agenda.set(f"gone{n}", None)
    assert len(agenda) == 0 and agenda.stored <= Agenda.SLACK
