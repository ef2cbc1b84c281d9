"""The city-sized district set (deploy/city): what the generator writes, and what it holds."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from streams.domain.district import DOCUMENTS, District, Team
from streams.reference_files import DEFAULT_DIRECTORY, load_district, load_hotspot_policy

CITY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "city"
DEFAULT_STREETS = {"330114005", "330114006"}  # Hezhuang and Yipeng


@pytest.fixture(scope="module")
def city() -> District:
    return load_district(CITY_DIR)


@pytest.fixture(scope="module")
def default() -> District:
    return load_district()


def test_the_committed_files_are_what_the_generator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("city_generate", CITY_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    monkeypatch.setitem(sys.modules, "district_generate", None)  # it registers the district generator: undone after
    spec.loader.exec_module(module)
    docs = module.documents()
    assert set(docs) == set(DOCUMENTS)
    for name, doc in docs.items():
        assert (CITY_DIR / name).read_text(encoding="utf-8") == module.D.render(doc), name


@pytest.mark.parametrize("name", ["sla.json", "hotspots.json", "categories.json"])
def test_policy_and_categories_are_the_default_districts_byte_for_byte(name: str) -> None:
    assert (CITY_DIR / name).read_bytes() == (DEFAULT_DIRECTORY / name).read_bytes()
    assert load_hotspot_policy(CITY_DIR) == load_hotspot_policy()


def test_the_worker_default_is_still_the_two_street_district(default: District) -> None:
    assert DEFAULT_DIRECTORY.name == "district"
    assert {s.code for s in default.streets} == DEFAULT_STREETS


def test_a_city_of_forty_streets_each_with_grids_places_and_staff(city: District) -> None:
    assert len(city.streets) == 40
    grids = Counter(g.street_code for g in city.grids)
    places = Counter(p.street_code for p in city.places)
    staff = Counter(m.street_code for m in city.members)
    for street in city.streets:
        assert grids[street.code] >= 6 and places[street.code] >= 4 and staff[street.code] >= 18, street
    assert 600 <= len(city.grids) <= 1500
    synthetic = [s for s in city.streets if s.code not in DEFAULT_STREETS]
    assert all(s.code[:5] == "33019" and "1" <= s.code[5] <= "5" and s.name.endswith("街道") for s in synthetic)
    assert len({g.code.split("-")[0] for g in city.grids}) == 40  # a grid-code prefix per street (alarm ids)


def test_hezhuang_and_yipeng_are_the_default_streets_unchanged(city: District, default: District) -> None:
    for code in DEFAULT_STREETS:
        mine = {g.code: (g.name, g.kind, g.polygon.wkt) for g in city.grids if g.street_code == code}
        theirs = {g.code: (g.name, g.kind, g.polygon.wkt) for g in default.grids if g.street_code == code}
        assert mine == theirs
        assert [p for p in city.places if p.street_code == code] == [p for p in default.places if p.street_code == code]


@pytest.mark.parametrize("team", list(Team))
def test_every_street_pool_covers_all_24_hours(city: District, team: Team) -> None:
    day = datetime(2026, 5, 12)
    for street in city.streets:
        uncovered = [h for h in range(24) if not city.on_duty(team, street.code, None, day.replace(hour=h, minute=30))]
        assert not uncovered, (street.code, team, uncovered)
