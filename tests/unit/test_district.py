"""District reference data: the shipped files, the lookups, and one test per validation error."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.district import (
    ISSUE_LEADS,
    SEED_TARGETS,
    District,
    GridKind,
    Place,
    ReferenceDataError,
    Shift,
    SlaOverride,
    SlaPolicy,
    SlaTargets,
    Team,
    normalise,
    place_keys,
)
from streams.errors import AlarmflowError
from streams.reference_files import DEFAULT_DIRECTORY, load_district

HEZHUANG, YIPENG = "330114005", "330114006"
SECOND = timedelta(seconds=1)
DAY = datetime(2026, 5, 12)  # naive: local Asia/Shanghai wall-clock time


@pytest.fixture(scope="module")
def district() -> District:
    return load_district()


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


# ---- the shipped data ----------------------------------------------------------------------------------------------


def test_the_committed_files_are_what_the_generator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("district_generate", DEFAULT_DIRECTORY / "generate.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    for name, doc in module.documents().items():
        assert (DEFAULT_DIRECTORY / name).read_text(encoding="utf-8") == module.render(doc), name


def test_hezhuang_has_the_reported_32_grids(district: District) -> None:
    kinds = Counter(g.kind for g in district.grids if g.street_code == HEZHUANG)
    assert kinds == {GridKind.TOWN: 10, GridKind.VILLAGE: 17, GridKind.INDUSTRIAL: 5}
    assert 4 <= sum(g.street_code == YIPENG for g in district.grids) <= 8
    street = district.street(HEZHUANG)
    assert street is not None and (street.name, street.name_en) == ("河庄街道", "Hezhuang")


def test_every_grid_has_one_grid_worker_and_one_or_two_governance_workers(district: District) -> None:
    for grid in district.grids:
        teams = Counter(m.team for m in district.members if m.grid_code == grid.code)
        assert teams[Team.GRID_WORKER] == 1, grid.code
        assert teams[Team.GOVERNANCE] in (1, 2), grid.code


def test_grids_are_staffed_most_of_the_day_with_some_night_gaps(district: District) -> None:
    def staffed_hours(street_code: str, grid_code: str) -> int:
        teams = (Team.GRID_WORKER, Team.GOVERNANCE)
        return sum(any(district.on_duty(t, street_code, grid_code, at(h, 30)) for t in teams) for h in range(24))

    hours = {g.code: staffed_hours(g.street_code, g.code) for g in district.grids}
    assert min(hours.values()) >= 16
    assert 0 < sum(h < 24 for h in hours.values()) < len(hours)


@pytest.mark.parametrize("street_code", [HEZHUANG, YIPENG])
@pytest.mark.parametrize("team", list(Team))
def test_every_street_pool_covers_all_24_hours(district: District, street_code: str, team: Team) -> None:
    uncovered = [
        f"{h:02d}:{m:02d}"
        for h in range(24)
        for m in (0, 59)
        if not district.on_duty(team, street_code, None, at(h, m))
    ]
    assert uncovered == []


def test_gazetteer_places_lie_in_their_grids(district: District) -> None:
    assert len(district.places) >= 25
    for place in district.places:
        grid = district.grid_at(place.lon, place.lat)
        assert grid is not None and grid.code == place.grid_code, place.name
    kinds = {p.name: p.kind for p in district.places}
    assert (kinds["云上澜苑"], kinds["河庄农贸市场"]) == ("COMPOUND", "MARKET")


def test_the_taxonomy_covers_the_required_codes(district: District) -> None:
    required = {
        "noise.renovation", "noise.night", "noise.commercial", "dispute.market", "dispute.neighbour",
        "dispute.workplace", "dispute.family", "dispute.consumer", "vendor.unlicensed", "vendor.occupying_road",
        "hazard.fire", "hazard.structure", "hazard.electric", "environment.garbage", "environment.pollution",
        "traffic.parking", "help.lost_person", "help.elderly", "crime.theft", "crime.assault", "crime.fraud",
        "public_order.fight",
    }  # fmt: skip
    assert required <= {c.code for c in district.categories}
    market = district.category("dispute.market")
    assert market is not None and (market.disposition, market.team) == ("NON_POLICE", Team.MEDIATION)
    assert all(c.team is Team.POLICE_STATION for c in district.categories if c.code.startswith("crime."))
    assert any(c.disposition == "REVIEW" for c in district.categories)
    assert district.category("noise.foo") is None


# ---- lookups -------------------------------------------------------------------------------------------------------


def test_grid_at_finds_the_containing_grid_or_none(district: District) -> None:
    t03 = district.grid("HZ-T03")
    assert t03 is not None
    inside = t03.polygon.representative_point()
    found = district.grid_at(inside.x, inside.y)
    assert found is not None and found.code == "HZ-T03"
    assert district.grid_at(121.0, 31.0) is None
    assert district.grid_at(120.59, 30.26) is None  # south of Yipeng, east of Hezhuang: no street


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("河庄街道云上澜苑3幢", "云上澜苑"),
        ("云上澜苑　３幢 1单元", "云上澜苑"),  # full-width space and digit
        ("云上澜苑小区5幢", "云上澜苑"),
        ("钱塘芯谷 A区 5号厂房", "钱塘芯谷A区"),  # longer beats 钱塘芯谷
        ("钱塘芯谷ａ区", "钱塘芯谷A区"),
        ("河庄菜场东门", "河庄农贸市场"),
        ("河庄街道 蜀山南路 9号", "蜀山南路9号"),
        ("义蓬街道 义府大街 66号", "义府大街66号"),
        ("新围村 12组", "新围村"),
        ("滨江区某某路1号", None),
    ],
)
def test_place_named_takes_the_longest_contained_name(district: District, address: str, expected: str | None) -> None:
    place = district.place_named(address)
    assert (place.name if place else None) == expected


NIGHT = Shift("NIGHT", time(20), time(8))
EVENING = Shift("EVENING", time(16), time(0))
DAYSHIFT = Shift("DAY", time(8), time(20))


@pytest.mark.parametrize(
    ("shift", "clock", "covered"),
    [
        (NIGHT, time(19, 59), False),
        (NIGHT, time(20, 0), True),
        (NIGHT, time(23, 59), True),
        (NIGHT, time(0, 0), True),
        (NIGHT, time(7, 59), True),
        (NIGHT, time(8, 0), False),
        (EVENING, time(23, 59), True),
        (EVENING, time(0, 0), False),
        (EVENING, time(15, 59), False),
        (DAYSHIFT, time(8, 0), True),
        (DAYSHIFT, time(19, 59), True),
        (DAYSHIFT, time(20, 0), False),
    ],
)
def test_shift_covers_wraps_at_midnight(shift: Shift, clock: time, covered: bool) -> None:
    assert shift.covers(clock) is covered


def test_on_duty_reads_aware_times_in_shanghai_and_sorts_by_id(district: District) -> None:
    morning = datetime(2026, 5, 12, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    assert [m.member_id for m in district.on_duty(Team.GRID_WORKER, HEZHUANG, "HZ-V01", morning)] == ["GW-01"]
    assert district.on_duty(Team.GRID_WORKER, HEZHUANG, "HZ-V01", at(3)) == []
    pool = district.on_duty(Team.POLICE_STATION, HEZHUANG, None, at(12))
    assert len(pool) >= 2 and [m.member_id for m in pool] == sorted(m.member_id for m in pool)
    assert all(m.grid_code is None for m in pool)


POLICY = SlaPolicy(
    default=SlaTargets(60, 180, 480),
    by_priority={1: SlaOverride(30, 120, 300), 4: SlaOverride(contact_s=240, arrive_s=900)},
    by_category={"hazard.fire": SlaOverride(accept_s=20, arrive_s=300), "help.lost_person": SlaOverride(contact_s=90)},
)


@pytest.mark.parametrize(
    ("category", "priority", "expected"),
    [
        ("noise.renovation", 3, SlaTargets(60, 180, 480, "default")),
        ("noise.renovation", 1, SlaTargets(30, 120, 300, "priority:1")),
        ("hazard.fire", 3, SlaTargets(20, 180, 300, "category:hazard.fire")),
        # key by key: category, priority, category; the rule names both
        ("hazard.fire", 4, SlaTargets(20, 240, 300, "priority:4+category:hazard.fire")),
        ("help.lost_person", 1, SlaTargets(30, 90, 300, "priority:1+category:help.lost_person")),
        ("unknown.code", 9, SlaTargets(60, 180, 480, "default")),
    ],
)
def test_sla_precedence_is_category_then_priority_then_default_and_names_the_rule(
    category: str, priority: int, expected: SlaTargets
) -> None:
    assert POLICY.targets(category, priority) == expected


def test_the_shipped_policy_is_the_seed_1_3_8_minutes_for_every_case_and_nothing_else(district: District) -> None:
    """The seed report: accept within 1 minute, contact within 3, on site within 8; no source supports others."""
    assert district.sla.overrides == 0
    for category in district.categories:
        for priority in range(1, 5):
            assert district.sla.targets(category.code, priority) == SlaTargets(60, 180, 480, "default")
    assert district.sla.default == SEED_TARGETS


def test_the_shipped_leads_are_issue_11s_warning_times_with_their_basis(district: District) -> None:
    """The seed sets targets, not warnings: the leads are the command room's operating choice from issue 11 §2."""
    assert district.sla.leads == {"accept": 20 * SECOND, "contact": 60 * SECOND, "arrive": 120 * SECOND}
    assert district.sla.lead_times == (20 * SECOND, 60 * SECOND, 120 * SECOND)
    assert "issue 11" in district.sla.leads_basis
    assert "at-risk warnings 20/60/120 s before the deadlines (basis: issue 11" in district.sla.describe()


def test_a_policy_without_leads_gets_issue_11s_and_its_own_leads_win() -> None:
    docs = small_docs()
    assert District.from_documents(docs).sla.leads == ISSUE_LEADS
    put(SL, ["leads"], {**LEADS, "accept_s": 5})(docs)
    policy = District.from_documents(docs).sla
    assert policy.lead_times == (5 * SECOND, 60 * SECOND, 120 * SECOND)
    assert policy.leads_basis == "the command room's choice"


def test_the_override_example_is_not_loaded_but_is_valid_when_an_operator_installs_it(tmp_path: Path) -> None:
    example = DEFAULT_DIRECTORY / "examples" / "sla.overrides.example.json"
    assert example.exists() and not (DEFAULT_DIRECTORY / "sla.json").read_text(encoding="utf-8").count("EXAMPLE")
    copied = tmp_path / "district"
    shutil.copytree(DEFAULT_DIRECTORY, copied)
    shutil.copy(example, copied / "sla.json")
    policy = load_district(copied).sla
    assert policy.targets("hazard.fire", 3) == SlaTargets(30, 180, 300, "category:hazard.fire")
    assert policy.targets("noise.renovation", 2) == SlaTargets(60, 180, 420, "priority:2")
    assert "category:hazard.fire (accept_s=30, arrive_s=300; basis: EXAMPLE ONLY" in policy.describe()


# ---- validation ----------------------------------------------------------------------------------------------------

WEST, SOUTH, SIZE = 120.50, 30.25, 0.01


def square(west: float, south: float = SOUTH, size: float = SIZE) -> list[list[list[float]]]:
    ring = [[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]
    return [ring]


def feature(code: str, street_code: str, rings: list[list[list[float]]], kind: str = "TOWN") -> dict[str, Any]:
    props = {"grid_code": code, "name": f"{code}网格", "street_code": street_code, "kind": kind}
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": rings}}


def small_docs() -> dict[str, Any]:
    """Two streets, three edge-sharing square grids, and just enough of everything else to be valid."""
    member = {"name": "测试员", "street_code": "S1", "grid_code": "A-01", "shifts": ["DAY"]}
    return {
        "streets.json": [
            {"code": "S1", "name": "甲街道", "name_en": "Jia"},
            {"code": "S2", "name": "乙街道", "name_en": "Yi"},
        ],
        "grids.geojson": {
            "type": "FeatureCollection",
            "features": [
                feature("A-01", "S1", square(WEST)),
                feature("A-02", "S1", square(WEST + SIZE)),
                feature("B-01", "S2", square(WEST + 2 * SIZE)),
            ],
        },
        "roster.json": {
            "shifts": {"DAY": {"start": "08:00", "end": "20:00"}, "NIGHT": {"start": "20:00", "end": "08:00"}},
            "members": [
                {**member, "member_id": "GW-01", "team": "GRID_WORKER"},
                {**member, "member_id": "PS-01", "team": "POLICE_STATION", "grid_code": None, "shifts": ["NIGHT"]},
            ],
        },
        "gazetteer.json": [
            {
                "name": "甲小区",
                "aliases": ["甲苑"],
                "kind": "COMPOUND",
                "street_code": "S1",
                "grid_code": "A-01",
                "lat": SOUTH + SIZE / 2,
                "lon": WEST + SIZE / 2,
            },
            {
                "name": "乙市场",
                "aliases": [],
                "kind": "MARKET",
                "street_code": "S2",
                "grid_code": "B-01",
                "lat": SOUTH + SIZE / 2,
                "lon": WEST + 2.5 * SIZE,
            },
        ],
        "categories.json": [
            {"code": "noise.renovation", "name": "装修噪音", "disposition": "NON_POLICE", "team": "GRID_WORKER"},
            {"code": "crime.theft", "name": "盗窃", "disposition": "POLICE", "team": "POLICE_STATION"},
        ],
        "sla.json": {
            "default": {"accept_s": 60, "contact_s": 180, "arrive_s": 480},
            "by_priority": {"1": {"accept_s": 30, "basis": "rule 1"}},
            "by_category": {"crime.theft": {"arrive_s": 300, "basis": "rule 2"}},
        },
    }


Edit = Callable[[dict[str, Any]], None]


def put(file: str, path: list[str | int], value: Any) -> Edit:
    def edit(docs: dict[str, Any]) -> None:
        target = docs[file]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


def add(file: str, path: list[str | int], item: Any) -> Edit:
    def edit(docs: dict[str, Any]) -> None:
        target = docs[file]
        for step in path:
            target = target[step]
        target.append(copy.deepcopy(item))

    return edit


def drop(file: str) -> Edit:
    def edit(docs: dict[str, Any]) -> None:
        del docs[file]

    return edit


ST, G, R, GZ, C, SL = "streets.json", "grids.geojson", "roster.json", "gazetteer.json", "categories.json", "sla.json"
BOWTIE = [[[WEST, SOUTH], [WEST + SIZE, SOUTH + SIZE], [WEST + SIZE, SOUTH], [WEST, SOUTH + SIZE], [WEST, SOUTH]]]
TIMING = {"accept_s": 60, "basis": "a written rule"}
LEADS = {"accept_s": 20, "contact_s": 60, "arrive_s": 120, "basis": "the command room's choice"}

BROKEN: list[tuple[str, Edit, str]] = [
    (SL, drop(SL), "document missing"),
    (ST, put(ST, [1, "code"], "S1"), "duplicate street code S1"),
    (ST, put(ST, [0, "name"], ""), "street #1: 'name' must be a non-empty string"),
    (ST, add(ST, [], 7), "the street list item #3 must be a JSON object"),
    (
        G,  # the street is fine; the grids file is what leaves it empty
        add(ST, [], {"code": "S3", "name": "丙", "name_en": "Bing"}),
        "street S3 has no grids",
    ),
    (G, put(G, ["type"], "Feature"), "must be a GeoJSON FeatureCollection"),
    (G, put(G, ["features", 0, "properties", "street_code"], "S9"), "grid A-01 names unknown street S9"),
    (G, put(G, ["features", 1, "properties", "grid_code"], "A-01"), "duplicate grid_code A-01"),
    (G, put(G, ["features", 0, "properties", "kind"], "CITY"), "grid A-01: unknown kind 'CITY'"),
    (G, put(G, ["features", 0, "geometry", "type"], "Point"), "grid A-01: geometry must be a GeoJSON Polygon"),
    (G, put(G, ["features", 0, "geometry", "coordinates"], BOWTIE), "grid A-01: invalid polygon (Self-intersection"),
    (G, put(G, ["features", 0, "geometry", "coordinates"], [[[0, 0], [1, 1]]]), "grid A-01: invalid polygon ("),
    (
        G,
        put(G, ["features", 1, "geometry", "coordinates"], square(WEST + SIZE / 2)),
        "grids A-01 and A-02 overlap (area 5e-05 deg²)",
    ),
    (G, put(G, ["features", 1, "geometry", "coordinates"], square(WEST + 5 * SIZE)), "do not form one contiguous area"),
    (R, put(R, ["members", 0, "grid_code"], "HZ-X99"), "member GW-01 names unknown grid HZ-X99"),
    (R, put(R, ["members", 0, "grid_code"], "B-01"), "member GW-01: grid B-01 belongs to street S2, not S1"),
    (R, put(R, ["members", 0, "street_code"], "S9"), "member GW-01 names unknown street S9"),
    (R, put(R, ["members", 0, "shifts"], ["SWING"]), "member GW-01 names unknown shift 'SWING'"),
    (R, put(R, ["members", 0, "shifts"], []), "member GW-01 has no shifts"),
    (R, put(R, ["members", 0, "team"], "FIRE"), "member GW-01: unknown team 'FIRE'"),
    (R, put(R, ["members", 1, "member_id"], "GW-01"), "duplicate member_id GW-01"),
    (R, put(R, ["shifts", "DAY", "start"], "8:00"), "shift 'DAY': 'start' must be a time HH:MM"),
    (R, put(R, ["shifts", "DAY", "end"], "08:00"), "shift 'DAY' starts and ends at 08:00"),
    (GZ, put(GZ, [0, "lon"], WEST + 1.5 * SIZE), "lies outside its grid A-01"),
    (GZ, put(GZ, [0, "grid_code"], "Z-99"), "place 甲小区 names unknown grid Z-99"),
    (GZ, put(GZ, [0, "kind"], "MALL"), "place 甲小区: unknown kind 'MALL'"),
    (GZ, put(GZ, [0, "lat"], True), "place 甲小区: 'lat' must be a finite number"),
    (GZ, put(GZ, [1, "aliases"], ["甲 苑"]), "'甲苑' is used by both 甲小区 and 乙市场"),
    (C, put(C, [0, "team"], "FIRE"), "unknown team 'FIRE'"),
    (C, put(C, [0, "disposition"], "MAYBE"), "unknown disposition 'MAYBE'"),
    (C, put(C, [1, "team"], "MEDIATION"), "POLICE disposition goes to team POLICE_STATION"),
    (C, put(C, [0, "code"], "Noise"), "a code is 'family.name' in lower case"),
    (C, put(C, [1, "code"], "noise.renovation"), "duplicate category code noise.renovation"),
    (SL, put(SL, ["by_category", "noise.foo"], TIMING), "by_category names unknown category 'noise.foo'"),
    (SL, put(SL, ["by_priority", "7"], TIMING), "by_priority names unknown priority '7'"),
    (SL, put(SL, ["default"], {"accept_s": 60}), "default must give all of accept_s, contact_s, arrive_s"),
    (SL, put(SL, ["by_priority", "1", "accept_s"], 0), "accept_s must be a positive whole number"),
    (SL, put(SL, ["by_priority", "1", "accept_s"], 1.5), "accept_s must be a positive whole number"),
    (SL, put(SL, ["by_priority", "1", "arrival_s"], 1), "by_priority '1' has unknown key 'arrival_s'"),
    (SL, put(SL, ["policy"], {}), "unknown key 'policy'"),
    (SL, put(SL, ["by_priority", "1", "basis"], " "), "an override needs a 'basis' naming the written rule"),
    (SL, put(SL, ["by_category", "crime.theft"], {"arrive_s": 300}), "an override needs a 'basis'"),
    (SL, put(SL, ["by_category", "crime.theft", "arrive_s"], 100), "crime.theft at priority 1 resolves"),
    (SL, put(SL, ["leads"], {"accept_s": 20, "contact_s": 60, "arrive_s": 120}), "leads: an override needs a 'basis'"),
    (SL, put(SL, ["leads"], {"accept_s": 20, "arrive_s": 120, "basis": "b"}), "leads must give all of accept_s"),
    (SL, put(SL, ["leads"], {**LEADS, "accept_s": 0}), "leads: accept_s must be a positive whole number"),
    (SL, put(SL, ["leads"], {**LEADS, "warn_s": 5}), "leads has unknown key 'warn_s'"),
]


def test_the_small_documents_are_valid_and_touching_edges_are_no_overlap() -> None:
    district = District.from_documents(small_docs())
    assert [g.code for g in district.grids] == ["A-01", "A-02", "B-01"]
    edge = district.grid_at(WEST + SIZE, SOUTH + SIZE / 2)  # on the edge: the lower code, deterministically
    assert edge is not None and edge.code == "A-01"


@pytest.mark.parametrize("shift", [-1e-8, 1e-8], ids=["overlap of 1e-10 deg²", "gap of 1e-8 deg"])
def test_rounding_noise_along_an_edge_is_neither_overlap_nor_gap(shift: float) -> None:
    docs = small_docs()
    put(G, ["features", 1, "geometry", "coordinates"], square(WEST + SIZE + shift))(docs)
    assert len(District.from_documents(docs).grids) == 3


@pytest.mark.parametrize(("file", "edit", "phrase"), BROKEN, ids=[f"{f}:{p}" for f, _, p in BROKEN])
def test_each_validation_error_names_the_file_and_the_problem(file: str, edit: Edit, phrase: str) -> None:
    docs = small_docs()
    edit(docs)
    with pytest.raises(ReferenceDataError, match=re.escape(phrase)) as caught:
        District.from_documents(docs)
    assert caught.value.file == file
    assert str(caught.value) == f"{file}: {caught.value.problem}"


def test_reference_data_error_is_an_alarmflow_error() -> None:
    error = ReferenceDataError("roster.json", "member GW-99 names unknown grid HZ-X99")
    assert isinstance(error, AlarmflowError)
    assert str(error) == "roster.json: member GW-99 names unknown grid HZ-X99"


# ---- the file adapter ----------------------------------------------------------------------------------------------


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    for name in small_docs():
        shutil.copy(DEFAULT_DIRECTORY / name, tmp_path / name)
    return tmp_path


def test_load_district_reads_a_directory(copied: Path) -> None:
    assert len(load_district(copied).grids) == len(load_district().grids)


def test_a_missing_file_is_named(copied: Path) -> None:
    (copied / "roster.json").unlink()
    with pytest.raises(ReferenceDataError, match="missing file") as caught:
        load_district(copied)
    assert caught.value.file == "roster.json"


def test_invalid_json_reports_line_and_column(copied: Path) -> None:
    (copied / "sla.json").write_text('{\n  "default": {,\n}\n', encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=r"invalid JSON at line 2, column 15") as caught:
        load_district(copied)
    assert caught.value.file == "sla.json"


def test_the_shipped_documents_round_trip_through_from_documents() -> None:
    docs = {name: json.loads((DEFAULT_DIRECTORY / name).read_text(encoding="utf-8")) for name in small_docs()}
    assert District.from_documents(docs) == load_district()


CITY = load_district(Path(__file__).resolve().parents[2] / "deploy" / "city")
NAMES = sorted({n for p in CITY.places for n in (p.name, *p.aliases)})


def _scan_place(district: District, text: str) -> Place | None:
    """place_named's rule read off the whole gazetteer, key by key: the reference its index must agree with."""
    haystack, best = normalise(text), None
    for place in district.places:
        for key in place_keys(place):
            at = haystack.rfind(key)
            if at >= 0 and (best is None or (len(key), at) > best[:2]):
                best = (len(key), at, place)
    return best[2] if best else None


@given(
    st.lists(
        st.one_of(
            st.sampled_from([n for p in CITY.places for n in (p.name, *p.aliases)]).map(
                lambda n: n[: max(1, len(n) - 1)]
            ),
            st.sampled_from([n for p in CITY.places for n in (p.name, *p.aliases)]),
            st.text(alphabet="街道路号幢区村 　３ａA", max_size=4),
        ),
        max_size=4,
    ).map("".join)
)
def test_the_gazetteer_index_finds_what_a_scan_of_every_place_finds(text: str) -> None:
    assert CITY.place_named(text) == _scan_place(CITY, text)


@given(
    st.sampled_from(sorted({(m.team, m.street_code, m.grid_code) for m in CITY.members}, key=str)),
    st.integers(min_value=0, max_value=24 * 60 - 1),
)
def test_the_roster_index_finds_who_a_scan_of_every_member_finds(
    unit: tuple[str, str, str | None], minute: int
) -> None:
    team, street_code, grid_code = unit
    when = datetime(2026, 5, 1, minute // 60, minute % 60)  # naive: local wall-clock time
    scan = sorted(
        (m for m in CITY.members if (m.team, m.street_code, m.grid_code) == unit and m.on_duty_at(when.time())),
        key=lambda m: m.member_id,
    )
    assert CITY.on_duty(team, street_code, grid_code, when) == scan
