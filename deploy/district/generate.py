"""Writes the district reference files; deterministic, so re-running it reproduces the committed JSON byte for byte.

The geometry and the people are synthetic (no official boundaries are available offline); the street and grid
counts follow the news report on Hezhuang's police–grid coordination.

Run: ``.venv/bin/python deploy/district/generate.py``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely.geometry import Point, Polygon

OUT = Path(__file__).resolve().parent
JITTER = 0.15  # of a cell; small enough that every cell stays a valid quad and its inner half stays inside it
DIGITS = 6  # ~0.1 m; shared vertices are rounded once, so neighbours keep identical edges

STREETS = [
    {"code": "330114005", "name": "河庄街道", "name_en": "Hezhuang"},
    {"code": "330114006", "name": "义蓬街道", "name_en": "Yipeng"},
]

HZ_VILLAGES = [
    "新围村", "建华村", "江东村", "蜀山村", "围中村", "协谊村", "向前村", "三丰村", "东联村",
    "永丰村", "新华村", "光明村", "胜利村", "青龙村", "朝阳村", "红卫村", "联丰村",
]  # fmt: skip
YP_VILLAGES = ["杨公村", "春光村"]
PARK_ZONES = ["A区", "B区", "C区", "D区", "E区"]


@dataclass(frozen=True)
class Lattice:
    """A street's rectangular block of cells; each row is a string of kinds, T/V/I, listed south to north."""

    prefix: str
    street_code: str
    west: float
    south: float
    cell_lon: float
    cell_lat: float
    rows: tuple[str, ...]
    seed: int


HEZHUANG = Lattice(
    prefix="HZ",
    street_code="330114005",
    west=120.50,
    south=30.25,
    cell_lon=0.01,
    cell_lat=0.02,
    # The 钱塘芯谷 park in the south-east, the 集镇 in the middle, villages around: 5 + 10 + 17 = 32 grids.
    rows=("VVVIIIII", "VVTTTTTV", "VVTTTTTV", "VVVVVVVV"),
    seed=330114005,
)
YIPENG = Lattice(
    prefix="YP",
    street_code="330114006",
    west=120.58,
    south=30.27,
    cell_lon=0.02,
    cell_lat=0.02,
    rows=("VI", "TT", "VT"),
    seed=330114006,
)

KIND = {"T": "TOWN", "V": "VILLAGE", "I": "INDUSTRIAL"}


def vertices(lat: Lattice) -> dict[tuple[int, int], tuple[float, float]]:
    """Lattice corners; interior ones are jittered so cells look less like a spreadsheet, the outline stays put."""
    rng = random.Random(lat.seed)  # noqa: S311 -- reproducible layout, not secrecy
    cols, nrows = len(lat.rows[0]), len(lat.rows)
    out: dict[tuple[int, int], tuple[float, float]] = {}
    for j in range(nrows + 1):
        for i in range(cols + 1):
            dx = dy = 0.0
            if 0 < i < cols and 0 < j < nrows:
                dx = rng.uniform(-JITTER, JITTER) * lat.cell_lon
                dy = rng.uniform(-JITTER, JITTER) * lat.cell_lat
            out[i, j] = (
                round(lat.west + i * lat.cell_lon + dx, DIGITS),
                round(lat.south + j * lat.cell_lat + dy, DIGITS),
            )
    return out


def cells(lat: Lattice) -> Iterator[tuple[str, int, int, Polygon]]:
    corner = vertices(lat)
    for j, row in enumerate(lat.rows):
        for i, kind in enumerate(row):
            ring = [corner[i, j], corner[i + 1, j], corner[i + 1, j + 1], corner[i, j + 1]]
            yield kind, i, j, Polygon(ring)


def grid_names(lat: Lattice) -> Iterator[tuple[str, str, str, Polygon]]:
    """(grid_code, name, kind, polygon) in reading order, south-west first."""
    villages = iter(HZ_VILLAGES if lat.prefix == "HZ" else YP_VILLAGES)
    zones = iter(PARK_ZONES)
    count = {"T": 0, "V": 0, "I": 0}
    town = "河庄" if lat.prefix == "HZ" else "义蓬"
    for kind, _i, _j, poly in cells(lat):
        count[kind] += 1
        n = count[kind]
        if kind == "T":
            name = f"{town}集镇第{n}网格"
        elif kind == "V":
            name = f"{next(villages)}网格"
        else:
            name = f"钱塘芯谷{next(zones)}网格" if lat.prefix == "HZ" else f"{town}工业园网格"
        yield f"{lat.prefix}-{kind}{n:02d}", name, KIND[kind], poly


def feature(code: str, name: str, street_code: str, kind: str, poly: Polygon) -> dict[str, Any]:
    ring = [list(xy) for xy in poly.exterior.coords]
    return {
        "type": "Feature",
        "properties": {"grid_code": code, "name": name, "street_code": street_code, "kind": kind},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


Grids = dict[str, tuple[str, str, str, Polygon]]  # grid_code -> (name, street_code, kind, polygon)


def all_grids() -> Grids:
    """grid_code -> (name, street_code, kind, polygon), Hezhuang first."""
    out: dict[str, tuple[str, str, str, Polygon]] = {}
    for lat in (HEZHUANG, YIPENG):
        for code, name, kind, poly in grid_names(lat):
            out[code] = (name, lat.street_code, kind, poly)
    return out


GRIDS = all_grids()


# ---- roster ---------------------------------------------------------------------------------------------------------

SHIFTS = {
    "DAY": {"start": "08:00", "end": "20:00"},
    "NIGHT": {"start": "20:00", "end": "08:00"},
    "OFFICE": {"start": "08:30", "end": "17:30"},
    "EVENING": {"start": "16:00", "end": "00:00"},
}
TEAM_PREFIX = {
    "POLICE_STATION": "PS",
    "ENFORCEMENT": "EN",
    "GOVERNANCE": "GV",
    "MEDIATION": "MD",
    "GRID_WORKER": "GW",
    "VOLUNTEER": "VL",
}
# Per street pool: the shifts of its members, team by team; DAY + NIGHT make 24 h, OFFICE adds daytime depth.
POOL_SHIFTS = {
    "POLICE_STATION": ["DAY", "DAY", "NIGHT", "NIGHT"],
    "ENFORCEMENT": ["DAY", "OFFICE", "NIGHT"],
    "GOVERNANCE": ["OFFICE", "DAY", "NIGHT"],
    "MEDIATION": ["OFFICE", "DAY", "NIGHT"],
    "GRID_WORKER": ["DAY", "NIGHT"],
    "VOLUNTEER": ["DAY", "DAY", "NIGHT"],
}
SURNAMES = "王李张刘陈杨黄赵周徐孙朱马胡郭林何高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玲斌海燕琳晨浩宇欣怡俊峰佳雯婷"


class Names:
    """Synthetic, unique Chinese names from a seeded generator; none is meant to be a real person."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 -- reproducible names, not secrecy
        self._used: set[str] = set()

    def next(self) -> str:
        while True:
            given = "".join(self._rng.choice(GIVEN) for _ in range(self._rng.choice((1, 2))))
            name = self._rng.choice(SURNAMES) + given
            if name not in self._used:
                self._used.add(name)
                return name


def governance_shifts(kind: str, index: int) -> list[list[str]]:
    """Busy grids (town, industrial, every third village) get a night governance worker; others leave 00-08 open."""
    if kind in ("TOWN", "INDUSTRIAL") or index % 3 == 0:
        return [["EVENING"], ["NIGHT"]]
    return [["EVENING"]]


def roster(
    grids: Grids = GRIDS,
    streets: list[dict[str, str]] = STREETS,
    digits: int = 2,
) -> dict[str, Any]:
    """Grid staff in grid order, then each street's pools; ids are numbered per team with ``digits`` digits."""
    names = Names(20210401)
    serial = dict.fromkeys(TEAM_PREFIX, 0)
    members: list[dict[str, Any]] = []

    def add(team: str, street_code: str, grid_code: str | None, shifts: list[str]) -> None:
        serial[team] += 1
        member_id = f"{TEAM_PREFIX[team]}-{serial[team]:0{digits}d}"
        members.append(
            {
                "member_id": member_id,
                "name": names.next(),
                "team": team,
                "street_code": street_code,
                "grid_code": grid_code,
                "shifts": shifts,
            }
        )

    for index, (code, (_name, street_code, kind, _poly)) in enumerate(grids.items()):
        add("GRID_WORKER", street_code, code, ["DAY"])
        for shifts in governance_shifts(kind, index):
            add("GOVERNANCE", street_code, code, shifts)
    for street in streets:
        for team, shift_list in POOL_SHIFTS.items():
            for shift in shift_list:
                add(team, street["code"], None, [shift])
    return {"shifts": SHIFTS, "members": members}


# ---- gazetteer ------------------------------------------------------------------------------------------------------

# (name, aliases, kind, grid_code, where in the cell: offsets from its centre in quarter-cells, each within ±1)
Places = list[tuple[str, list[str], str, str, tuple[float, float]]]
PLACES: Places = [
    ("云上澜苑", ["云上澜苑小区", "云上澜苑安置小区"], "COMPOUND", "HZ-T03", (0.0, 0.0)),
    ("河庄农贸市场", ["河庄菜场", "河庄菜市场"], "MARKET", "HZ-T05", (0.0, 0.0)),
    ("河庄街道办事处", ["河庄街道办"], "OTHER", "HZ-T08", (-0.5, 0.5)),
    ("河庄派出所", ["河庄所"], "OTHER", "HZ-T08", (0.5, -0.5)),
    ("河庄街道全域智治综合指挥中心", ["河庄指挥中心", "河庄小脑"], "OTHER", "HZ-T08", (0.5, 0.5)),
    ("河庄中心小学", ["河庄小学"], "SCHOOL", "HZ-T02", (0.0, 0.0)),
    ("河庄初级中学", ["河庄中学"], "SCHOOL", "HZ-T09", (0.0, 0.0)),
    ("河庄文化公园", [], "PARK", "HZ-T07", (0.0, 0.0)),
    ("江东花园", ["江东花园小区"], "COMPOUND", "HZ-T04", (0.0, 0.0)),
    ("蜀山南路9号", ["蜀山南路九号"], "STREET_ADDRESS", "HZ-T01", (0.0, 0.0)),
    ("江东大道188号", [], "STREET_ADDRESS", "HZ-I02", (0.5, 0.5)),
    ("钱塘芯谷", ["钱塘芯谷产业园"], "PARK", "HZ-I03", (0.0, 0.0)),
    *[(f"钱塘芯谷{zone}", [], "PARK", f"HZ-I{n:02d}", (-0.5, -0.5)) for n, zone in enumerate(PARK_ZONES, start=1)],
    *[(village, [], "VILLAGE", f"HZ-V{n:02d}", (0.0, 0.0)) for n, village in enumerate(HZ_VILLAGES, start=1)],
    ("义蓬农贸市场", ["义蓬菜场"], "MARKET", "YP-T01", (0.0, 0.0)),
    ("义府大街66号", [], "STREET_ADDRESS", "YP-T02", (0.0, 0.0)),
    ("义蓬中学", [], "SCHOOL", "YP-T03", (0.0, 0.0)),
    ("义蓬派出所", [], "OTHER", "YP-T02", (0.5, 0.5)),
    *[(village, [], "VILLAGE", f"YP-V{n:02d}", (0.0, 0.0)) for n, village in enumerate(YP_VILLAGES, start=1)],
]


def gazetteer(places: Places = PLACES, grids: Grids = GRIDS) -> list[dict[str, Any]]:
    out = []
    for name, aliases, kind, grid_code, (qx, qy) in places:
        _grid_name, street_code, _kind, poly = grids[grid_code]
        west, south, east, north = poly.bounds
        centre = poly.centroid
        lon = round(centre.x + qx * (east - west) / 4, DIGITS)
        lat = round(centre.y + qy * (north - south) / 4, DIGITS)
        if not poly.contains(Point(lon, lat)):  # guards the JITTER assumption rather than trusting it
            raise SystemExit(f"{name} at ({lon}, {lat}) fell outside {grid_code}; lower JITTER or move it")
        out.append(
            {
                "name": name,
                "aliases": aliases,
                "kind": kind,
                "street_code": street_code,
                "grid_code": grid_code,
                "lat": lat,
                "lon": lon,
            }
        )
    return out


# ---- categories and SLA ---------------------------------------------------------------------------------------------

CATEGORIES = [
    ("noise.renovation", "装修噪音", "NON_POLICE", "GRID_WORKER"),
    ("noise.night", "夜间噪音扰民", "NON_POLICE", "ENFORCEMENT"),
    ("noise.commercial", "商业经营噪音", "NON_POLICE", "ENFORCEMENT"),
    ("dispute.market", "市场买卖纠纷", "NON_POLICE", "MEDIATION"),
    ("dispute.neighbour", "邻里纠纷", "NON_POLICE", "MEDIATION"),
    ("dispute.workplace", "劳资及工友纠纷", "NON_POLICE", "MEDIATION"),
    ("dispute.family", "家庭纠纷", "REVIEW", "MEDIATION"),
    ("dispute.consumer", "消费纠纷", "NON_POLICE", "MEDIATION"),
    ("dispute.property", "物业纠纷", "NON_POLICE", "GOVERNANCE"),
    ("vendor.unlicensed", "无证摊贩", "NON_POLICE", "ENFORCEMENT"),
    ("vendor.occupying_road", "占道经营", "NON_POLICE", "ENFORCEMENT"),
    ("hazard.fire", "消防安全隐患", "REVIEW", "ENFORCEMENT"),
    ("hazard.structure", "房屋构筑物安全隐患", "NON_POLICE", "ENFORCEMENT"),
    ("hazard.electric", "用电安全隐患", "NON_POLICE", "GRID_WORKER"),
    ("environment.garbage", "垃圾乱堆乱放", "NON_POLICE", "GRID_WORKER"),
    ("environment.pollution", "环境污染", "NON_POLICE", "ENFORCEMENT"),
    ("traffic.parking", "违章停车堵路", "NON_POLICE", "ENFORCEMENT"),
    ("traffic.accident", "交通事故", "POLICE", "POLICE_STATION"),
    ("help.lost_person", "走失人员", "POLICE", "POLICE_STATION"),
    ("help.elderly", "老人求助", "NON_POLICE", "VOLUNTEER"),
    ("help.locked_out", "开锁求助", "NON_POLICE", "VOLUNTEER"),
    ("crime.theft", "盗窃", "POLICE", "POLICE_STATION"),
    ("crime.assault", "故意伤害", "POLICE", "POLICE_STATION"),
    ("crime.fraud", "诈骗", "POLICE", "POLICE_STATION"),
    ("public_order.fight", "打架斗殴", "POLICE", "POLICE_STATION"),
    ("public_order.drunk", "醉酒滋事", "REVIEW", "POLICE_STATION"),
    ("public_order.gathering", "人员聚集", "REVIEW", "GOVERNANCE"),
    ("other.unclassified", "其他", "REVIEW", "GOVERNANCE"),
]

# Only the seed report's targets (an operator's overrides need a written rule: deploy/district/examples/), and the
# command room's warning leads from issue 11.
SLA = {
    "default": {
        "accept_s": 60,
        "contact_s": 180,
        "arrive_s": 480,
        "basis": "钱塘区“小脑+手脚”警网协同: 1分钟接受指令, 3分钟联系当事人, 8分钟内处置力量到达 (the seed report)",
    },
    # Not a target: when the command room is warned that a stage is at risk (SlaAtRisk), before its deadline.
    "leads": {
        "accept_s": 20,
        "contact_s": 60,
        "arrive_s": 120,
        "basis": "issue 11 §2: the command room's operating choice (the seed sets no warning times)",
    },
}


def documents() -> dict[str, object]:
    """Every reference document, keyed by file name."""
    features = [feature(code, name, street, kind, poly) for code, (name, street, kind, poly) in GRIDS.items()]
    keys = ("code", "name", "disposition", "team")
    return {
        "streets.json": STREETS,
        "grids.geojson": {"type": "FeatureCollection", "features": features},
        "roster.json": roster(),
        "gazetteer.json": gazetteer(),
        "categories.json": [dict(zip(keys, row, strict=True)) for row in CATEGORIES],
        "sla.json": SLA,
    }


def render(doc: object) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    for name, doc in documents().items():
        (OUT / name).write_text(render(doc), encoding="utf-8")


if __name__ == "__main__":
    main()
