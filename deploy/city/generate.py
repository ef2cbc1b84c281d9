"""Writes a city-sized district set: 40 streets with their grids, roster and gazetteer; deterministic, so
re-running it reproduces the committed JSON byte for byte.

The city is the benchmark's workload (bench/README.md, ``--workload city``), not a deployment: the worker
loads it only when ``ALARMFLOW_DISTRICT_DIR`` names this folder. Hezhuang and Yipeng are the default district's
streets, unchanged in geometry, grid codes and places; the other 38 streets are **synthetic**: their codes lie
under county codes 330191-330195, which no real county uses, and their names, grids, places and people are made
up. Categories, the SLA policy and the hotspot rules are the default district's, file for file.

Run: ``.venv/bin/python deploy/city/generate.py``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

OUT = Path(__file__).resolve().parent
DISTRICT = OUT.parent / "district"
SYNTHETIC_STREETS = 38
SEED = 330190
CELL_LON, CELL_LAT = 0.008, 0.007  # an urban grid: about 770 m x 780 m
CITY_WEST, CITY_EAST, CITY_SOUTH = 120.10, 120.62, 30.34  # north of Hezhuang and Yipeng, so nothing overlaps them
MEMBER_DIGITS = 4  # a city has thousands of members per team prefix
PLACE_SLOTS = ((0.0, 0.0), (0.5, 0.5), (-0.5, 0.5), (0.5, -0.5), (-0.5, -0.5))  # quarter-cells from a grid's centre
PROFILES = (("urban", 0.45), ("mixed", 0.35), ("industrial", 0.20))


def _district_generator() -> ModuleType:
    """deploy/district/generate.py, which owns the lattice, staffing and gazetteer rules (it is not a package)."""
    spec = importlib.util.spec_from_file_location("district_generate", DISTRICT / "generate.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {DISTRICT / 'generate.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


D = _district_generator()

# Street names: a first and a second character with their pinyin; combined at random, checked for unique codes.
FIRST = {
    "澜": "Lan", "滨": "Bin", "潮": "Chao", "枫": "Feng", "桂": "Gui", "禾": "He", "锦": "Jin", "梅": "Mei",
    "宁": "Ning", "清": "Qing", "瑞": "Rui", "松": "Song", "棠": "Tang", "文": "Wen", "溪": "Xi", "杨": "Yang",
    "竹": "Zhu", "安": "An", "德": "De", "康": "Kang", "平": "Ping", "茗": "Ming", "柯": "Ke", "樟": "Zhang",
}  # fmt: skip
SECOND = {
    "江": "jiang", "桥": "qiao", "塘": "tang", "浦": "pu", "山": "shan", "湖": "hu", "港": "gang", "埠": "bu",
    "湾": "wan", "墩": "dun", "林": "lin", "溇": "lou",
}  # fmt: skip
# Well-known real places, or sound-alikes of them (溪湖, Xihu: 西湖), would read as claims about them.
NOT_NAMES = {"滨江", "松江", "杨浦", "宁波", "清河", "平湖", "德清", "安吉", "溪湖"}
VILLAGE_FIRST = "新联东西南北永长大红光和兴丰盛安富宏振金银双前后"
VILLAGE_SECOND = "丰华明星河家桥乐民湾港塘圩埭兜浜"


@dataclass(frozen=True)
class CityStreet:
    code: str
    name: str  # 澜江街道
    short: str  # 澜江
    name_en: str  # Lanjiang
    lattice: Any  # the district generator's Lattice
    profile: str


def street_names(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """(short name, name_en, grid prefix) for ``count`` streets; prefixes are unique and not HZ or YP."""
    combos = [(a, b) for a in FIRST for b in SECOND if a + b not in NOT_NAMES]
    rng.shuffle(combos)
    used_prefixes, used_first = {"HZ", "YP"}, dict.fromkeys(FIRST, 0)
    out: list[tuple[str, str, str]] = []
    for a, b in combos:
        prefix = FIRST[a][0] + SECOND[b][0].upper()
        if prefix in used_prefixes or used_first[a] >= 2:
            continue
        used_prefixes.add(prefix)
        used_first[a] += 1
        out.append((a + b, FIRST[a] + SECOND[b], prefix))
        if len(out) == count:
            return out
    raise SystemExit(f"only {len(out)} street names with unique prefixes; add characters")


def kinds(cols: int, rows: int, profile: str) -> tuple[str, ...]:
    """Rows of cell kinds, south to north: a town centre, villages around it (not in urban streets), and an
    industrial south row in industrial streets."""
    out = []
    for j in range(rows):
        row = ""
        for i in range(cols):
            d = max(abs((i + 0.5 - cols / 2) / (cols / 2)), abs((j + 0.5 - rows / 2) / (rows / 2)))
            if profile == "industrial" and j == 0:
                row += "I"
            elif profile == "urban" or d <= 0.6:
                row += "T"
            else:
                row += "V"
        out.append(row)
    return tuple(out)


def synthetic_streets() -> list[CityStreet]:
    """Lattices packed in shelves, west to east and row by row northwards; neighbours share edges exactly."""
    rng = random.Random(SEED)  # noqa: S311 -- a reproducible layout, not secrecy
    names = street_names(rng, SYNTHETIC_STREETS)
    out: list[CityStreet] = []
    west, south, shelf = CITY_WEST, CITY_SOUTH, 0.0
    for index, (short, name_en, prefix) in enumerate(names):
        cols, rows = rng.randint(3, 8), rng.randint(3, 6)
        profile = rng.choices([p for p, _ in PROFILES], [w for _, w in PROFILES])[0]
        if round(west + cols * CELL_LON, 6) > CITY_EAST:
            west, south, shelf = CITY_WEST, round(south + shelf, 6), 0.0
        code = f"33019{index // 8 + 1}{index % 8 + 1:03d}"
        lattice = D.Lattice(prefix, code, west, south, CELL_LON, CELL_LAT, kinds(cols, rows, profile), int(code))
        out.append(CityStreet(code, f"{short}街道", short, name_en, lattice, profile))
        west, shelf = round(west + cols * CELL_LON, 6), max(shelf, rows * CELL_LAT)
    return out


def village_names(count: int, taken: set[str]) -> list[str]:
    rng = random.Random(SEED + 1)  # noqa: S311 -- reproducible names, not secrecy
    combos = [a + b + "村" for a in VILLAGE_FIRST for b in VILLAGE_SECOND if a != b]
    rng.shuffle(combos)
    names = [n for n in combos if n not in taken]
    if len(names) < count:
        raise SystemExit(f"{count} villages wanted, {len(names)} names available; add characters")
    return names[:count]


def street_grids(street: CityStreet, villages: list[str]) -> list[tuple[str, str, str, Any]]:
    """(grid_code, name, kind, polygon) in reading order; takes village names from ``villages``."""
    count = {"T": 0, "V": 0, "I": 0}
    out = []
    for kind, _i, _j, poly in D.cells(street.lattice):
        count[kind] += 1
        n = count[kind]
        if kind == "T":
            name = f"{street.short}城区第{n}网格"
        elif kind == "V":
            name = f"{villages.pop(0)}网格"
        else:
            name = f"{street.short}工业园{chr(ord('A') + n - 1)}区网格"
        out.append((f"{street.lattice.prefix}-{kind}{n:02d}", name, D.KIND[kind], poly))
    return out


def street_places(street: CityStreet, grids: list[tuple[str, str, str, Any]]) -> list[Any]:
    """A street's gazetteer, hottest first (the simulator weighs places by rank): compounds, the market, the
    school, offices, an address, the industrial park and every village."""
    s = street.short
    town = [g[0] for g in grids if g[2] == "TOWN"]
    wanted = [
        (f"{s}花园", [f"{s}花园小区"], "COMPOUND"),
        (f"{s}农贸市场", [f"{s}菜场"], "MARKET"),
        (f"{s}嘉苑", [f"{s}嘉苑小区"], "COMPOUND"),
        (f"{s}中心小学", [f"{s}小学"], "SCHOOL"),
        (f"{s}路{len(grids) * 3 + 8}号", [], "STREET_ADDRESS"),
        (f"{s}街道办事处", [f"{s}街道办"], "OTHER"),
        (f"{s}派出所", [f"{s}所"], "OTHER"),
    ]
    places = []
    for n, (name, aliases, kind) in enumerate(wanted):
        slot = PLACE_SLOTS[(n // len(town)) % len(PLACE_SLOTS)]
        places.append((name, aliases, kind, town[n % len(town)], slot))
    industrial = [g[0] for g in grids if g[2] == "INDUSTRIAL"]
    if industrial:
        places.append((f"{s}工业园", [f"{s}产业园"], "PARK", industrial[0], (0.0, 0.0)))
    places += [(g[1].removesuffix("网格"), [], "VILLAGE", g[0], (0.0, 0.0)) for g in grids if g[2] == "VILLAGE"]
    return places


def documents() -> dict[str, object]:
    """Every reference document of the city, keyed by file name."""
    synthetic = synthetic_streets()
    streets = [*D.STREETS, *({"code": s.code, "name": s.name, "name_en": s.name_en} for s in synthetic)]
    grids = dict(D.GRIDS)  # Hezhuang and Yipeng as in the default district
    places = list(D.PLACES)
    need = sum(row.count("V") for s in synthetic for row in s.lattice.rows)
    villages = village_names(need, {*D.HZ_VILLAGES, *D.YP_VILLAGES})
    for street in synthetic:
        own = street_grids(street, villages)
        grids.update({code: (name, street.code, kind, poly) for code, name, kind, poly in own})
        places += street_places(street, own)
    features = [D.feature(code, name, street, kind, poly) for code, (name, street, kind, poly) in grids.items()]
    default = D.documents()
    return {
        "streets.json": streets,
        "grids.geojson": {"type": "FeatureCollection", "features": features},
        "roster.json": D.roster(grids, streets, MEMBER_DIGITS),
        "gazetteer.json": D.gazetteer(places, grids),
        "categories.json": default["categories.json"],
        "sla.json": default["sla.json"],
    }


def main() -> None:
    for name, doc in documents().items():
        (OUT / name).write_text(D.render(doc), encoding="utf-8")
    # Hand-written in the default district (not generated there): copied byte for byte, so the city's hotspot
    # rules are the default ones.
    (OUT / "hotspots.json").write_bytes((DISTRICT / "hotspots.json").read_bytes())


if __name__ == "__main__":
    main()
