"""The projection writer's look-up for repeats, on the real engine (embedded chDB): it reads only the batch's
part of the sort key, and still finds every repeat, wherever in the table its first copy lies."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.client import opened
from projections.migrate import migrate
from projections.sink import MAX_SPANS, SPAN_GAP_MS, ClickHouseSink, dedup_token, time_spans
from projections.tables import DEADLETTERS, DISPATCHES, LIFECYCLE, OUTCOME_DAILY, Rows, TableSpec

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@given(st.lists(st.integers(min_value=0, max_value=10**13), max_size=300))
def test_spans_cover_every_time_and_stay_few(times: list[int]) -> None:
    spans = time_spans(times)
    assert all(any(lo <= t <= hi for lo, hi in spans) for t in times)
    assert len(spans) <= MAX_SPANS and (spans == []) == (times == [])
    assert all(hi1 < lo2 for (_, hi1), (lo2, _) in itertools.pairwise(spans))  # sorted and disjoint
    if len(spans) < MAX_SPANS:  # not capped: no span bridges a gap wider than SPAN_GAP_MS
        for lo, hi in spans:
            inside = sorted(t for t in set(times) if lo <= t <= hi)
            assert all(b - a <= SPAN_GAP_MS for a, b in itertools.pairwise(inside))


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseSink]:
    path: Path = tmp_path_factory.mktemp("sink")
    with opened(f"chdb://{path}") as client:
        migrate(client)
        yield ClickHouseSink(client)


def _row(spec: TableSpec, offset: int, **values: Any) -> tuple[Any, ...]:
    """A row of ``spec``: the given columns, defaults for the others, Kafka coordinates last."""
    coordinates = {"kafka_topic": "t", "kafka_partition": 0, "kafka_offset": offset}
    out = []
    for field in spec.schema:
        if field.name in values:
            out.append(values[field.name])
        elif field.name in coordinates:
            out.append(coordinates[field.name])
        elif field.nullable and field.name not in ("occurred_at", "ingested_at"):
            out.append(None)
        elif str(field.type).startswith("timestamp"):
            out.append(T0)
        elif str(field.type).startswith(("string", "large_string", "dictionary")):
            out.append("x")
        elif str(field.type).startswith("list"):
            out.append([])
        elif str(field.type).startswith("date"):
            out.append(T0.date())
        else:
            out.append(0)
    return tuple(out)


def _write(sink: ClickHouseSink, spec: TableSpec, rows: list[tuple[Any, ...]]) -> None:
    batch = Rows(spec, rows)
    sink.write(batch, dedup_token(spec.name, [("t", 0, rows[0][-1], rows[-1][-1])]))


@pytest.mark.parametrize(
    ("spec", "located"),
    [
        (DISPATCHES, lambda i: {"occurred_at": T0 + timedelta(days=i)}),
        (LIFECYCLE, lambda i: {"case_id": f"C{i}"}),
        (OUTCOME_DAILY, lambda i: {"stats_key": f"K{i}"}),
        (DEADLETTERS, lambda i: {"origin": f"t/0/{i}"}),
    ],
    ids=lambda v: v.name if isinstance(v, TableSpec) else "",
)
def test_a_repeat_is_found_wherever_its_first_copy_lies(sink: ClickHouseSink, spec: TableSpec, located: Any) -> None:
    """Forty days of rows, one insert per day; then a batch repeating rows of the first and the last day among
    new ones (one of the new ones shares a repeat's sort-key value): exactly the repeats are found."""
    ids = [str(uuid.uuid4()) for _ in range(40)]
    for i, event_id in enumerate(ids):
        _write(sink, spec, [_row(spec, i, event_id=event_id, **located(i))])
    fresh = [str(uuid.uuid4()) for _ in range(3)]
    batch = Rows(
        spec,
        [
            _row(spec, 100, event_id=ids[0], **located(0)),
            _row(spec, 101, event_id=fresh[0], **located(0)),
            _row(spec, 102, event_id=ids[39], **located(39)),
            _row(spec, 103, event_id=fresh[1], **located(20)),
            _row(spec, 104, event_id=fresh[2], **located(77)),
        ],
    )
    assert sink.existing([batch]) == {spec.name: {ids[0], ids[39]}}
    assert sink.existing([Rows(spec, [])]) == {spec.name: set()}


def test_one_look_up_serves_every_table_of_a_batch(sink: ClickHouseSink) -> None:
    """Three tables in one look-up: each finds its own repeats, and an identity another table holds is not one."""
    cases = [
        (DISPATCHES, {"occurred_at": T0 + timedelta(days=3)}),
        (LIFECYCLE, {"case_id": "C-many"}),
        (DEADLETTERS, {"origin": "t/0/many"}),
    ]
    held = {spec.name: str(uuid.uuid4()) for spec, _ in cases}
    for i, (spec, located) in enumerate(cases):
        _write(sink, spec, [_row(spec, 500 + i, event_id=held[spec.name], **located)])
    others = list(held.values())
    batch = [
        Rows(spec, [_row(spec, 600 + j, event_id=event_id, **located) for j, event_id in enumerate(others)])
        for spec, located in cases
    ]
    assert sink.existing([*batch, Rows(OUTCOME_DAILY, [])]) == {
        **{spec.name: {held[spec.name]} for spec, _ in cases},
        OUTCOME_DAILY.name: set(),
    }
