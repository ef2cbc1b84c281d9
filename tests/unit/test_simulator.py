"""The district simulator: determinism, the contract, and its distributions inside their documented bounds.

Statistical checks use fixed seeds, so they are exact repeats, not flaky; the bounds are the ones README.md
documents for the default shapes. Nothing here measures wall-clock time.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schemas.codec import Codec
from schemas.errors import PoisonInput
from schemas.jsonform import format_time
from schemas.validation import Limits, check_event
from streams.domain.district import LOCAL_TZ, District
from streams.kafka_io import LineError, parse_lines, read_jsonl
from streams.reference_files import load_district
from streams.settings import Settings
from streams.simulator.cli import simulate
from streams.simulator.config import DEFAULT_RATE_PER_DAY, SimConfig, SimulationError, default_start, parse_rate
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.generator import generate, originals
from streams.simulator.jsonl import to_line, write_jsonl
from streams.simulator.publisher import Pacer, encode
from streams.simulator.stamps import from_ms, iso_local, to_ms, uuid4_text

START = datetime(2026, 5, 1, tzinfo=LOCAL_TZ)
HEZHUANG = "330114005"
HOTSPOT = "云上澜苑"
CLEAN = {"duplicates": 0.0, "malformed": 0.0, "disorder_s": 0.0}
# A month of a busy street, no imperfections: enough cases for the shares to settle.
BIG = SimConfig(seed=7, start=START, days=28, rate_per_day=1000, drain_hours=12, **CLEAN)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def district() -> District:
    return load_district()


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


@pytest.fixture(scope="module")
def big(district: District) -> list[SimEvent]:
    return list(generate(BIG, district))


@pytest.fixture(scope="module")
def cases(big: list[SimEvent]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """case id → record name → that record's events, in event-time order."""
    by_case: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for e in big:
        assert isinstance(e.value, dict)
        by_case[e.key or ""][e.type].append(e.value)
    return by_case


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def seconds(later: dict[str, Any], earlier: dict[str, Any]) -> float:
    return (when(later) - when(earlier)).total_seconds()


def share(flags: Iterable[bool]) -> float:
    values = list(flags)
    assert values, "no data to take a share of"
    return sum(values) / len(values)


def field_cases(cases: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, list[dict[str, Any]]]]:
    return [c for c in cases.values() if c["AlarmReceived"][0]["police_matter"] != "POLICE"]


# ---- determinism ---------------------------------------------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_files_and_another_seed_does_not(district: District, tmp_path: Path) -> None:
    config = SimConfig(seed=3, start=START, days=7, rate_per_day=200, duplicates=0.05, malformed=0.02)
    write_jsonl(tmp_path / "a.jsonl", config, district)
    write_jsonl(tmp_path / "b.jsonl", config, district)
    write_jsonl(tmp_path / "c.jsonl", replace(config, seed=4), district)
    a = (tmp_path / "a.jsonl").read_bytes()
    assert len(a.splitlines()) > 1000
    assert a == (tmp_path / "b.jsonl").read_bytes()
    assert a != (tmp_path / "c.jsonl").read_bytes()


def test_output_does_not_depend_on_the_process_hash_seed(district: District, tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from datetime import datetime; "
        "from streams.domain.district import LOCAL_TZ; from streams.reference_files import load_district; "
        "from streams.simulator.config import SimConfig; from streams.simulator.jsonl import write_jsonl; "
        "write_jsonl(Path(sys.argv[1]), SimConfig(seed=8, start=datetime(2026, 5, 1, tzinfo=LOCAL_TZ), days=2, "
        "rate_per_day=300, malformed=0.05), load_district())"
    )
    here = SimConfig(seed=8, start=START, days=2, rate_per_day=300, malformed=0.05)
    write_jsonl(tmp_path / "here.jsonl", here, district)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there.jsonl")], check=True, env=env)
    assert (tmp_path / "there.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()


def test_imperfections_leave_the_simulated_facts_alone(district: District) -> None:
    config = SimConfig(seed=5, start=START, days=3, rate_per_day=300, **CLEAN)  # type: ignore[arg-type]
    clean = [to_line(e) for e in generate(config, district)]
    noisy = list(generate(replace(config, duplicates=0.1, malformed=0.05, disorder_s=60, disorder_share=0.5), district))
    assert sorted(to_line(e) for e in noisy if e.delivery is Delivery.ORIGINAL) == sorted(clean)
    assert [to_line(e) for e in noisy if e.delivery is Delivery.ORIGINAL] != clean  # but the order changed


def test_alarm_ids_are_unique_and_name_the_street_the_local_day_and_the_run(big: list[SimEvent]) -> None:
    alarms = [e.value for e in big if e.type == "AlarmReceived" and isinstance(e.value, dict)]
    ids = [a["alarm_id"] for a in alarms]
    assert len(set(ids)) == len(ids) > 20_000
    assert all(re.fullmatch(r"HZ-\d{8}-[0-9a-f]{4}-\d{5}", i) for i in ids)
    assert all(a["alarm_id"][3:11] == a["occurred_at"][:10].replace("-", "") for a in alarms)


# ---- the contract --------------------------------------------------------------------------------------------------


def test_every_valid_message_passes_the_gate_and_every_broken_one_is_rejected(district: District, codec: Codec) -> None:
    config = SimConfig(seed=11, start=START, days=5, rate_per_day=400, duplicates=0.02, malformed=0.03)
    limits, broken, valid = Limits(), 0, 0
    for e in generate(config, district):
        key, value = encode(codec, e)
        if e.delivery is Delivery.MALFORMED:
            with pytest.raises(PoisonInput):
                codec.decode(value)
            broken += 1
            continue
        decoded = codec.decode(value)  # Avro single-object encoding, through the reader schema
        check_event(codec, decoded, e.published_at, limits, key=key, topic_suffix=e.topic)
        assert codec.to_json(decoded) == codec.to_json(codec.from_json(e.value))
        valid += 1
    assert broken > 50 and valid > 5000


def test_only_upstream_records_are_generated_and_police_matters_get_no_field_events(
    cases: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    upstream = {
        "AlarmReceived",
        "InstructionAccepted",
        "PartyContacted",
        "ResponderArrived",
        "MediationConcluded",
        "CaseClosed",
    }
    assert {name for c in cases.values() for name in c} == upstream
    police = [c for c in cases.values() if c["AlarmReceived"][0]["police_matter"] == "POLICE"]
    assert len(police) > 5000
    assert all(set(c) == {"AlarmReceived"} for c in police)
    assert 0.30 < len(police) / len(cases) < 0.40  # the police share, 35% by default


def test_jsonl_round_trips_through_the_publish_parser(district: District, codec: Codec, tmp_path: Path) -> None:
    config = SimConfig(seed=2, start=START, days=4, rate_per_day=300, duplicates=0.03, malformed=0.02)
    path = tmp_path / "run.jsonl"
    summary = write_jsonl(path, config, district)
    parsed = [item for _, item in parse_lines(codec, read_jsonl(path), Limits())]
    errors = [x for x in parsed if isinstance(x, LineError)]
    events = [x for x in parsed if not isinstance(x, LineError)]
    assert len(parsed) == summary.messages == sum(1 for _ in read_jsonl(path))
    assert len(errors) == summary.malformed > 10
    assert len(events) == summary.events + summary.duplicates
    assert {x.error_class for x in errors} <= {"Undecodable", "MissingField"}
    expected = [codec.from_json(e.value) for e in generate(config, district) if e.delivery is not Delivery.MALFORMED]
    assert events == expected


def test_broken_raw_bytes_never_break_a_jsonl_line() -> None:
    raw = b"\xc3\x01\n\r\x00\xff{\x1c\xc2\x85" + "\u2028".encode()
    line = to_line(SimEvent(0, 0, "alarms", "A1", "AlarmReceived", raw, Delivery.MALFORMED))
    assert len(line.splitlines()) == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_fast_formatters_agree_with_the_contract_and_uuid() -> None:
    for ms in (0, 1_746_000_000_123, to_ms(START), to_ms(START) - 1, 4_102_444_799_999):
        assert iso_local(ms) == format_time(from_ms(ms))
    for bits in (0, (1 << 128) - 1, 0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0):
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


# ---- time ----------------------------------------------------------------------------------------------------------


def test_by_default_the_run_ends_now_so_every_event_is_in_the_past(district: District) -> None:
    now = datetime(2026, 6, 1, 12, 34, 56, 789000, tzinfo=UTC)
    config = SimConfig(days=2, rate_per_day=500, drain_hours=1).resolved(now)
    assert config.start == datetime(2026, 5, 30, 11, 34, tzinfo=UTC)
    assert config.resolved(now + timedelta(days=1)) == config
    assert all(e.occurred_ms < to_ms(now) for e in generate(config, district))
    assert default_start(now, 0.5) == datetime(2026, 6, 1, 0, 34, tzinfo=UTC)


def test_no_event_happens_after_the_span_and_its_drain(district: District) -> None:
    config = SimConfig(seed=9, start=START, days=1, rate_per_day=2000, drain_hours=0.5)
    cutoff = to_ms(START) + 86_400_000 + 1_800_000
    events = list(generate(config, district))
    assert max(e.occurred_ms for e in events) < cutoff
    assert max(e.occurred_ms for e in events if e.type == "AlarmReceived") < to_ms(START) + 86_400_000
    assert min(e.occurred_ms for e in events) >= to_ms(START)


def test_disorder_never_exceeds_the_lateness_and_publish_times_never_go_back(district: District) -> None:
    lateness_ms = 20_000
    config = SimConfig(seed=4, start=START, days=2, rate_per_day=3000, disorder_s=20, disorder_share=0.3)
    newest, worst, previous = 0, 0, 0
    for e in generate(config, district):
        assert e.publish_ms >= previous
        assert 0 <= e.publish_ms - e.occurred_ms <= lateness_ms
        newest = max(newest, e.occurred_ms)
        worst = max(worst, newest - e.occurred_ms)
        previous = e.publish_ms
    assert 5_000 < worst <= lateness_ms


def test_disorder_zero_publishes_in_event_time_order(district: District) -> None:
    config = SimConfig(seed=4, start=START, days=1, rate_per_day=3000, disorder_s=0, duplicates=0.05)
    times = [e.occurred_ms for e in generate(config, district)]
    assert times == sorted(times)


def test_the_pacer_plays_simulated_time_at_speed_and_never_publishes_the_future() -> None:
    wall = [1_000_000.0]
    start_ms = int((wall[0] - 3600) * 1000)  # an hour before the wall clock's start
    pacer = Pacer(600, start_ms, lambda: wall[0])

    def at(offset_s: float) -> SimEvent:
        ms = start_ms + int(offset_s * 1000)
        return SimEvent(ms, ms, "alarms", "A", "AlarmReceived", {})

    assert pacer.wait_s(at(600)) == pytest.approx(1.0)  # ten simulated minutes a second
    assert pacer.wait_s(at(0)) == 0.0
    assert pacer.wait_s(at(3600 + 5)) == pytest.approx(6.0, abs=0.01)  # pacing, not the clock, decides here
    assert Pacer(0, start_ms, lambda: wall[0]).wait_s(at(3600 + 5)) == pytest.approx(5.0)  # would lie in the future
    assert Pacer(0, start_ms, lambda: wall[0]).wait_s(at(60)) == 0.0


# ---- distributions (fixed seeds; bounds documented in README.md) -----------------------------------------------


def test_the_field_meets_most_targets_with_a_long_tail(cases: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    worked = [c for c in field_cases(cases) if c["InstructionAccepted"]]
    accept = [seconds(c["InstructionAccepted"][0], c["AlarmReceived"][0]) for c in worked]
    contact = [seconds(c["PartyContacted"][0], c["AlarmReceived"][0]) for c in worked]
    arrive = [seconds(c["ResponderArrived"][0], c["AlarmReceived"][0]) for c in worked if c["ResponderArrived"]]
    assert 0.85 <= share(s <= 60 for s in accept) <= 0.95
    assert 0.85 <= share(s <= 180 for s in contact) <= 0.97
    assert 0.85 <= share(s <= 480 for s in arrive) <= 0.97
    assert 20 <= statistics.median(accept) <= 35
    assert 0.003 <= share(s > 120 for s in accept) <= 0.03  # the tail: some take more than twice the target
    assert max(accept) > 180 and max(arrive) > 900
    assert min(accept) > 2  # dispatch comes a few seconds after the alarm


def test_some_cases_are_settled_by_phone_and_some_never_accepted(
    cases: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    field = field_cases(cases)
    contacted = [c for c in field if c["PartyContacted"]]
    by_phone = [c for c in contacted if not c["ResponderArrived"]]
    assert 0.20 <= len(by_phone) / len(contacted) <= 0.30  # phone_only = 0.25
    assert all(c["PartyContacted"][0]["method"] == "PHONE" for c in by_phone)
    unaccepted = [c for c in field if not c["InstructionAccepted"]]
    assert 0.012 <= len(unaccepted) / len(field) <= 0.03  # no_accept = 0.02
    assert any(c["PartyContacted"] for c in unaccepted) and any(not c["PartyContacted"] for c in unaccepted)
    assert all(c["CaseClosed"] for c in unaccepted)


def test_outcomes_are_near_the_reported_success_rate(cases: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    concluded = [c for c in field_cases(cases) if c["MediationConcluded"]]
    first = [c["MediationConcluded"][0] for c in concluded]
    assert 0.980 <= share(m["outcome"] == "RESOLVED" for m in first) <= 0.994  # the report: 98.7%
    assert {m["outcome"] for m in first} == {
        "RESOLVED",
        "REFERRED",
        "ESCALATED_TO_POLICE",
        "UNRESOLVED",
        "NO_ACTION_NEEDED",
    }
    corrected = [c for c in concluded if len(c["MediationConcluded"]) > 1]
    assert 0.002 <= len(corrected) / len(concluded) <= 0.01  # correction = 0.005
    assert all(len({m["outcome"] for m in c["MediationConcluded"]}) == 2 for c in corrected)


def test_compensation_is_exact_yuan_for_some_resolved_disputes(
    cases: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    paid = [
        (c["AlarmReceived"][0]["category"], m)
        for c in cases.values()
        for m in c["MediationConcluded"]
        if m["compensation"] is not None
    ]
    assert len(paid) > 300
    assert all(re.fullmatch(r"\d+\.\d{2}", m["compensation"]) and m["outcome"] == "RESOLVED" for _, m in paid)
    assert {category.split(".")[0] for category, _ in paid} == {"dispute"}
    assert max(float(m["compensation"]) for _, m in paid) > 1000  # a tail to thousands


def test_calls_peak_in_the_evening_and_on_weekends(big: list[SimEvent]) -> None:
    alarms = [when(e.value) for e in big if e.type == "AlarmReceived" and isinstance(e.value, dict)]
    hours = Counter(a.hour for a in alarms)
    days = Counter(a.weekday() for a in alarms)
    assert hours[19] + hours[20] + hours[21] > 4 * (hours[2] + hours[3] + hours[4])
    assert max(hours, key=lambda h: hours[h]) in range(17, 23)
    assert days[5] > 1.1 * days[1]  # Saturday over Tuesday (both appear four times in 28 days)
    assert 900 * 28 < len(alarms) < 1100 * 28


def test_locations_cover_every_grid_and_a_few_places_take_most_calls(big: list[SimEvent], district: District) -> None:
    alarms = [e.value for e in big if e.type == "AlarmReceived" and isinstance(e.value, dict)]
    located = [a["location"] for a in alarms if a["location"]["lat"] is not None]
    grids = Counter(g.code for loc in located if (g := district.grid_at(loc["lon"], loc["lat"])) is not None)
    hezhuang = {g.code for g in district.grids if g.street_code == HEZHUANG}
    assert set(grids) == hezhuang and sum(grids.values()) == len(located)
    places = Counter(p.name for a in alarms if (p := district.place_named(a["location"]["address"])) is not None)
    ranked = [name for name, _ in places.most_common()]
    assert {"云上澜苑", "河庄农贸市场"} <= set(ranked[:3])
    assert places.most_common(1)[0][1] > 10 * statistics.median(places.values())  # Zipf: a few places run hot


def test_callers_repeat_and_look_like_mobile_numbers(big: list[SimEvent]) -> None:
    phones = Counter(e.value["caller_phone"] for e in big if e.type == "AlarmReceived" and isinstance(e.value, dict))
    phones.pop(None, None)  # grid patrols have no caller
    assert all(re.fullmatch(r"13\d{9}", p) for p in phones)
    top = phones.most_common(1)[0][1]
    assert 5 <= top <= 0.01 * phones.total()  # regulars call again and again, but nobody is a tenth of the street
    assert sum(1 for n in phones.values() if n > 1) > 1000


def test_field_workers_are_on_duty_in_the_right_street(
    cases: dict[str, dict[str, list[dict[str, Any]]]], district: District
) -> None:
    members = {m.member_id: m for m in district.members if m.street_code == HEZHUANG}
    field = [c for c in field_cases(cases) if c["InstructionAccepted"]]
    on_duty = []
    for c in field:
        member = members[c["InstructionAccepted"][0]["worker_id"]]
        at = when(c["AlarmReceived"][0]).astimezone(LOCAL_TZ)
        on_duty.append(member.on_duty_at(at.time()))
        workers = {e["worker_id"] for name in ("PartyContacted", "ResponderArrived") for e in c[name]}
        assert workers <= {member.member_id}
    assert share(on_duty) > 0.99


# ---- the hotspot ---------------------------------------------------------------------------------------------------


def hotspot_days(config: SimConfig, district: District) -> list[float]:
    """Days into the run of each renovation-noise alarm the gazetteer places at the hotspot compound."""
    out = []
    for e in originals(config, district):
        value = e.value
        assert isinstance(value, dict)
        if e.type != "AlarmReceived" or value["category"] != "noise.renovation":
            continue
        place = district.place_named(value["location"]["address"])
        if place is not None and place.name == HOTSPOT:
            out.append((e.occurred_ms - config.start_ms()) / 86_400_000)
    return out


def test_the_hotspot_crosses_the_detector_threshold_in_a_default_month(district: District) -> None:
    days = hotspot_days(SimConfig(start=START), district)
    assert len(days) >= 10  # the detector's default: 10 calls at one place in 30 days
    assert len(days) >= 15  # the report: 20多起; the default expects 24 plus the background


def test_the_hotspot_builds_up_then_cools_after_the_rule(district: District) -> None:
    config = SimConfig(seed=1, start=START, days=60, hotspot_calls=60, hotspot_start_day=5, hotspot_rule_day=45)
    days = hotspot_days(config, district)
    early = sum(1 for d in days if d < 15)
    before = sum(1 for d in days if 35 <= d < 45)
    after = sum(1 for d in days if 50 <= d < 60)
    assert before > 2 * early and before >= 10
    assert after < before / 2


def test_a_week_long_demo_crosses_the_threshold_too(district: District) -> None:
    assert len(hotspot_days(SimConfig(seed=1, start=START, days=7), district)) >= 10


# ---- imperfect input -----------------------------------------------------------------------------------------------


def test_duplicate_and_malformed_rates_are_near_the_configured_shares(district: District) -> None:
    config = replace(BIG, days=7, duplicates=0.02, malformed=0.01, disorder_s=30)
    events = list(generate(config, district))
    deliveries = Counter(e.delivery for e in events)
    originals_ = deliveries[Delivery.ORIGINAL]
    assert 0.016 <= deliveries[Delivery.DUPLICATE] / originals_ <= 0.024
    assert 0.007 <= deliveries[Delivery.MALFORMED] / originals_ <= 0.013
    twice = deliveries[Delivery.DUPLICATE]
    ids = Counter(
        e.value["event_id"] for e in events if isinstance(e.value, dict) and e.delivery is not Delivery.MALFORMED
    )
    assert Counter(ids.values()) == {1: originals_ - twice, 2: twice}


# ---- configuration and the command ---------------------------------------------------------------------------------


def test_rates_take_units_and_defaults_come_from_the_report() -> None:
    assert parse_rate("6") == parse_rate("6/d") == 6.0
    assert parse_rate("250/h") == 6000.0
    assert parse_rate("1000/s") == 86_400_000.0
    assert parse_rate("0.5/min") == 720.0
    for bad in ("", "fast", "-3/s", "3/week", "0"):
        with pytest.raises(SimulationError):
            parse_rate(bad)
    assert 5 < DEFAULT_RATE_PER_DAY < 7  # ≈ 3.8 non-police cases a day (700 in Apr–Sep) over a 35% police share
    with pytest.raises(SimulationError):
        SimConfig(duplicates=1.5)
    with pytest.raises(SimulationError):
        SimConfig(start=datetime(2026, 5, 1))  # the point: no time zone


def test_unknown_street_or_place_is_a_clear_error(district: District) -> None:
    with pytest.raises(SimulationError, match="street"):
        list(generate(SimConfig(start=START, street_code="999"), district))
    with pytest.raises(SimulationError, match="hotspot place"):
        list(generate(SimConfig(start=START, hotspot_place="无此小区"), district))


def test_another_street_runs_without_a_compound_hotspot(district: District) -> None:
    events = list(generate(SimConfig(start=START, street_code="330114006", days=5, rate_per_day=200), district))
    assert events and all(e.key is None or e.key.startswith("YP-") for e in events)


def test_the_command_writes_jsonl_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    options = (
        "--days 3 --seed 5 --rate 40/h --start 2026-05-01T00:00 --duplicates 0.02 --malformed 0.01 --disorder-s 10"
    )
    args = [*options.split(), "--out", str(out)]
    result = CliRunner().invoke(simulate, args, obj=Settings())
    assert result.exit_code == 0, result.output
    assert re.search(r"^(\d+) messages: \d+ events, \d+ duplicates, \d+ malformed", result.output, re.M)
    total = int(result.output.split()[0])
    assert total == len(out.read_text(encoding="utf-8").splitlines()) > 2000
    assert "AlarmReceived" in result.output and "event time 2026-05-01T00:0" in result.output
    again = tmp_path / "again.jsonl"
    assert CliRunner().invoke(simulate, [*options.split(), "--out", str(again)], obj=Settings()).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_the_command_rejects_a_bad_rate(tmp_path: Path) -> None:
    result = CliRunner().invoke(simulate, ["--rate", "lots", "--out", str(tmp_path / "x.jsonl")], obj=Settings())
    assert result.exit_code != 0 and "rate" in result.output
