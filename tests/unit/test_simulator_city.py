"""The simulator over every street of a district (``--street all``), on the city set (deploy/city).

Fixed seeds: every check is an exact repeat, not a flaky sample. Nothing here measures wall-clock time.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas.codec import Codec
from schemas.errors import PoisonInput
from schemas.validation import Limits, check_event
from streams.domain.district import LOCAL_TZ, District
from streams.reference_files import load_district
from streams.settings import Settings
from streams.simulator.cli import simulate
from streams.simulator.config import ALL_STREETS, SimConfig, SimulationError
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.generator import generate
from streams.simulator.jsonl import to_line, write_jsonl
from streams.simulator.publisher import encode
from streams.simulator.streets import hotspot_street, per_street, street_weights

CITY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "city"
START = datetime(2026, 5, 1, tzinfo=LOCAL_TZ)
HEZHUANG = "330114005"
# Two days of the whole city at 4,000 alarms a day, with the default imperfections.
RUN = SimConfig(seed=21, start=START, days=2, rate_per_day=4000, street_code=ALL_STREETS, hotspot_calls=30)


@pytest.fixture(scope="module")
def city() -> District:
    return load_district(CITY_DIR)


@pytest.fixture(scope="module")
def run(city: District) -> list[SimEvent]:
    return list(generate(RUN, city))


def alarms(events: list[SimEvent]) -> list[dict[str, object]]:
    return [e.value for e in events if e.type == "AlarmReceived" and e.delivery is Delivery.ORIGINAL
            and isinstance(e.value, dict)]  # fmt: skip


def street_of(alarm: dict[str, object]) -> str:
    location = alarm["location"]
    assert isinstance(location, dict)
    return str(location["street_code"])


def test_every_street_gets_alarms_in_proportion_to_its_grids(run: list[SimEvent], city: District) -> None:
    per = Counter(street_of(a) for a in alarms(run))
    assert set(per) == {s.code for s in city.streets}
    total = per.total()
    for code, share in street_weights(city).items():
        expected = share * total
        assert abs(per[code] - expected) <= 5 * expected**0.5 + 5, (code, per[code], expected)  # Poisson spread


def test_alarm_ids_name_their_street_and_never_collide(run: list[SimEvent], city: District) -> None:
    prefix = {s.code: next(g.code.split("-")[0] for g in city.grids if g.street_code == s.code) for s in city.streets}
    ids = [str(a["alarm_id"]) for a in alarms(run)]
    assert len(set(ids)) == len(ids)
    for a in alarms(run):
        assert re.fullmatch(rf"{prefix[street_of(a)]}-\d{{8}}-[0-9a-f]{{4}}-\d{{5}}", str(a["alarm_id"]))


def test_the_located_calls_lie_in_their_own_street(run: list[SimEvent], city: District) -> None:
    located = [a for a in alarms(run) if isinstance(a["location"], dict) and a["location"]["lat"] is not None]
    assert len(located) > 4000
    for a in located:
        loc = a["location"]
        assert isinstance(loc, dict)
        grid = city.grid_at(float(loc["lon"]), float(loc["lat"]))
        assert grid is not None and grid.street_code == loc["street_code"]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    run: list[SimEvent], city: District, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "again.jsonl", RUN, city)
    write_jsonl(tmp_path / "other.jsonl", replace(RUN, seed=22, days=0.25), city)
    first = "".join(to_line(e) + "\n" for e in run).encode()
    assert len(run) > 20_000
    assert (tmp_path / "again.jsonl").read_bytes() == first
    assert not first.startswith((tmp_path / "other.jsonl").read_bytes()[:5000])


def test_streets_draw_from_their_own_random_streams(city: District) -> None:
    """Same seed, different streets: without their own streams, streets would repeat each other's draws."""
    configs = per_street(RUN, city)
    assert {c.scope for c in configs} == {s.code for s in city.streets}
    assert sum(c.rate_per_day for c in configs) == pytest.approx(RUN.rate_per_day)
    a, b = (replace(c, street_code=c.street_code) for c in configs[2:4])
    categories = [[e.value["category"] for e in generate(c, city) if e.type == "AlarmReceived"  # type: ignore[index]
                   and isinstance(e.value, dict)][:50] for c in (a, b)]  # fmt: skip
    assert categories[0] != categories[1]


def test_the_hour_of_day_profile_holds_across_the_city(run: list[SimEvent]) -> None:
    hours = Counter(datetime.fromisoformat(str(a["occurred_at"])).hour for a in alarms(run))
    assert hours[19] + hours[20] + hours[21] > 4 * (hours[2] + hours[3] + hours[4])
    assert max(hours, key=lambda h: hours[h]) in range(17, 23)


def test_duplicates_disorder_and_poison_apply_to_the_merged_stream(city: District, codec: Codec) -> None:
    config = replace(RUN, duplicates=0.03, malformed=0.01, disorder_s=20, disorder_share=0.3)
    events = list(generate(config, city))
    deliveries = Counter(e.delivery for e in events)
    originals = deliveries[Delivery.ORIGINAL]
    assert 0.024 <= deliveries[Delivery.DUPLICATE] / originals <= 0.036
    assert 0.007 <= deliveries[Delivery.MALFORMED] / originals <= 0.013
    previous, worst, newest = 0, 0, 0
    for e in events:
        assert e.publish_ms >= previous and 0 <= e.publish_ms - e.occurred_ms <= 20_000
        newest, previous = max(newest, e.occurred_ms), e.publish_ms
        worst = max(worst, newest - e.occurred_ms)
    assert worst > 5_000
    limits = Limits()
    for e in events[:5_000]:
        key, value = encode(codec, e)
        if e.delivery is Delivery.MALFORMED:
            with pytest.raises(PoisonInput):
                codec.decode(value)
        else:
            check_event(codec, codec.decode(value), e.published_at, limits, key=key, topic_suffix=e.topic)


def test_the_one_hotspot_is_hezhuangs_compound(run: list[SimEvent], city: District) -> None:
    assert hotspot_street(RUN, city) == HEZHUANG
    assert [c.street_code for c in per_street(RUN, city) if c.hotspot_calls > 0] == [HEZHUANG]
    renovation = Counter(
        place.street_code
        for a in alarms(run)
        if a["category"] == "noise.renovation" and (place := city.place_named(str(a["location"]["address"])))  # type: ignore[index]
        and place.name == "云上澜苑"
    )  # fmt: skip
    assert renovation[HEZHUANG] >= 10
    with pytest.raises(SimulationError, match="hotspot place"):
        list(generate(replace(RUN, hotspot_place="无此小区"), city))


def test_the_command_simulates_every_street_of_a_district_dir(tmp_path: Path) -> None:
    out = tmp_path / "city.jsonl"
    args = ["--district-dir", str(CITY_DIR), "--street", "all", "--days", "0.25", "--rate", "8000/d",
            "--start", "2026-05-01T08:00", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(simulate, args, obj=Settings())
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert int(result.output.split()[0]) == len(lines) > 2000
    streets = {m.group(1) for line in lines if (m := re.search(r"\"street_code\": \"(\d+)\"", line))}
    assert len(streets) > 30


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()
