"""Parsing and validating the district's reference documents into the model of ``district.py``. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from enum import StrEnum
from typing import Any, TypeVar, cast

import shapely
import shapely.errors
from shapely.geometry import Point, Polygon, shape

from streams.domain.district import (
    DOCUMENTS,
    ISSUE_LEADS,
    ISSUE_LEADS_BASIS,
    LEAD_STAGES,
    PRIORITIES,
    SLA_KEYS,
    Category,
    Disposition,
    District,
    Grid,
    GridKind,
    Member,
    Place,
    PlaceKind,
    ReferenceDataError,
    Shift,
    SlaOverride,
    SlaPolicy,
    SlaTargets,
    Street,
    Team,
    place_keys,
)

# ~10 m² here: neighbours that share an edge may intersect by rounding noise, which is no overlap.
OVERLAP_TOLERANCE_DEG2 = 1e-9
SNAP_DEG = 1e-7
_CATEGORY_CODE = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_documents(docs: Mapping[str, Any]) -> District:
    """Build a District from parsed JSON keyed by file name; raise ReferenceDataError on the first problem found."""
    for name in DOCUMENTS:
        if name not in docs:
            raise ReferenceDataError(name, "document missing")
    streets = _parse_streets(_Doc("streets.json"), docs["streets.json"])
    grids = _parse_grids(_Doc("grids.geojson"), docs["grids.geojson"], streets)
    shifts, members = _parse_roster(_Doc("roster.json"), docs["roster.json"], streets, grids)
    places = _parse_gazetteer(_Doc("gazetteer.json"), docs["gazetteer.json"], streets, grids)
    categories = _parse_categories(_Doc("categories.json"), docs["categories.json"])
    sla = _parse_sla(_Doc("sla.json"), docs["sla.json"], categories)
    return District(
        streets=tuple(streets.values()),
        grids=tuple(grids.values()),
        shifts=tuple(shifts.values()),
        members=members,
        places=places,
        categories=tuple(categories.values()),
        sla=sla,
    )


E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class _Doc:
    """Typed reads from one parsed document; every failure names the file."""

    file: str

    def error(self, problem: str) -> ReferenceDataError:
        return ReferenceDataError(self.file, problem)

    def obj(self, value: object, what: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{what} must be a JSON object")
        return value

    def objects(self, value: object, what: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list):
            raise self.error(f"{what} must be a JSON array")
        return [self.obj(item, f"{what} item #{n}") for n, item in enumerate(value, start=1)]

    def text(self, obj: Mapping[str, Any], key: str, where: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{where}: '{key}' must be a non-empty string")
        return value

    def optional_text(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        return None if obj.get(key) is None else self.text(obj, key, where)

    def texts(self, obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = obj.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(f"{where}: '{key}' must be a list of non-empty strings")
        return tuple(value)

    def number(self, obj: Mapping[str, Any], key: str, where: str) -> float:
        value = obj.get(key)
        # bool is an int to Python, but true is no coordinate
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(f"{where}: '{key}' must be a finite number")
        return float(value)

    def choice(self, kind: type[E], obj: Mapping[str, Any], key: str, where: str) -> E:
        value = obj.get(key)
        try:
            return kind(str(value))  # a non-string fails like an unknown name
        except ValueError:
            raise self.error(f"{where}: unknown {key} {value!r}") from None

    def unique(self, what: str, codes: Iterable[str]) -> None:
        seen: set[str] = set()
        for code in codes:
            if code in seen:
                raise self.error(f"duplicate {what} {code}")
            seen.add(code)


def _parse_streets(doc: _Doc, raw: object) -> dict[str, Street]:
    streets = [
        Street(
            doc.text(o, "code", f"street #{n}"),
            doc.text(o, "name", f"street #{n}"),
            doc.text(o, "name_en", f"street #{n}"),
        )
        for n, o in enumerate(doc.objects(raw, "the street list"), start=1)
    ]
    doc.unique("street code", (s.code for s in streets))
    return {s.code: s for s in streets}


def _parse_grids(doc: _Doc, raw: object, streets: Mapping[str, Street]) -> dict[str, Grid]:
    root = doc.obj(raw, "the document")
    if root.get("type") != "FeatureCollection":
        raise doc.error("the document must be a GeoJSON FeatureCollection")
    grids = [_grid(doc, n, f, streets) for n, f in enumerate(doc.objects(root.get("features"), "'features'"), start=1)]
    doc.unique("grid_code", (g.code for g in grids))
    _check_overlaps(doc, grids)
    _check_streets_tiled(doc, grids, streets)
    return {g.code: g for g in grids}


def _grid(doc: _Doc, n: int, feature: Mapping[str, Any], streets: Mapping[str, Street]) -> Grid:
    props = doc.obj(feature.get("properties"), f"feature #{n}: 'properties'")
    code = doc.text(props, "grid_code", f"feature #{n}")
    where = f"grid {code}"
    street_code = doc.text(props, "street_code", where)
    if street_code not in streets:
        raise doc.error(f"{where} names unknown street {street_code}")
    kind = doc.choice(GridKind, props, "kind", where)
    return Grid(code, doc.text(props, "name", where), street_code, kind, _polygon(doc, feature.get("geometry"), where))


def _polygon(doc: _Doc, geometry: object, where: str) -> Polygon:
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        raise doc.error(f"{where}: geometry must be a GeoJSON Polygon")
    try:
        polygon = cast(Polygon, shape(geometry))  # the type was checked above
    except (ValueError, TypeError, LookupError, shapely.errors.ShapelyError) as exc:
        raise doc.error(f"{where}: invalid polygon ({exc})") from None
    if polygon.is_empty:
        raise doc.error(f"{where}: invalid polygon (empty)")
    if not polygon.is_valid:
        raise doc.error(f"{where}: invalid polygon ({shapely.is_valid_reason(polygon)})")
    west, south, east, north = polygon.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise doc.error(f"{where}: coordinates are not [lon, lat] degrees")
    return polygon


def _check_overlaps(doc: _Doc, grids: list[Grid]) -> None:
    polygons = [g.polygon for g in grids]
    left, right = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    for i, j in sorted(zip(left.tolist(), right.tolist(), strict=True)):
        if i < j:
            area = float(polygons[i].intersection(polygons[j]).area)
            if area > OVERLAP_TOLERANCE_DEG2:
                raise doc.error(f"grids {grids[i].code} and {grids[j].code} overlap (area {area:.2g} deg²)")


def _check_streets_tiled(doc: _Doc, grids: list[Grid], streets: Mapping[str, Street]) -> None:
    for code in streets:
        polygons = [g.polygon for g in grids if g.street_code == code]
        if not polygons:
            raise doc.error(f"street {code} has no grids")
        # Snapping to ~1 cm lets a rounding-noise sliver between neighbours count as touching, as overlaps do.
        union = shapely.union_all(polygons, grid_size=SNAP_DEG)
        if union.geom_type != "Polygon":
            parts = len(union.geoms) if hasattr(union, "geoms") else 0
            raise doc.error(f"the grids of street {code} do not form one contiguous area ({parts} separate parts)")


def _parse_roster(
    doc: _Doc, raw: object, streets: Mapping[str, Street], grids: Mapping[str, Grid]
) -> tuple[dict[str, Shift], tuple[Member, ...]]:
    root = doc.obj(raw, "the document")
    shift_docs = doc.obj(root.get("shifts"), "'shifts'")
    shifts = {name: _shift(doc, name, doc.obj(spec, f"shift {name!r}")) for name, spec in shift_docs.items()}
    items = doc.objects(root.get("members"), "'members'")
    members = tuple(_member(doc, n, o, shifts, streets, grids) for n, o in enumerate(items, start=1))
    doc.unique("member_id", (m.member_id for m in members))
    return shifts, members


def _shift(doc: _Doc, name: str, spec: Mapping[str, Any]) -> Shift:
    start, end = (_clock(doc, spec, key, f"shift {name!r}") for key in ("start", "end"))
    if start == end:
        raise doc.error(f"shift {name!r} starts and ends at {start:%H:%M}; say which hours it covers")
    return Shift(name, start, end)


def _clock(doc: _Doc, spec: Mapping[str, Any], key: str, where: str) -> time:
    value = spec.get(key)
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise doc.error(f"{where}: '{key}' must be a time HH:MM, got {value!r}")
    return time(int(match[1]), int(match[2]))


def _member(
    doc: _Doc,
    n: int,
    o: Mapping[str, Any],
    shifts: Mapping[str, Shift],
    streets: Mapping[str, Street],
    grids: Mapping[str, Grid],
) -> Member:
    member_id = doc.text(o, "member_id", f"member #{n}")
    where = f"member {member_id}"
    team = doc.choice(Team, o, "team", where)
    street_code = doc.text(o, "street_code", where)
    if street_code not in streets:
        raise doc.error(f"{where} names unknown street {street_code}")
    grid_code = doc.optional_text(o, "grid_code", where)
    if grid_code is not None:
        _check_grid_of_street(doc, where, grid_code, street_code, grids)
    names = doc.texts(o, "shifts", where)
    if not names:
        raise doc.error(f"{where} has no shifts")
    for name in names:
        if name not in shifts:
            raise doc.error(f"{where} names unknown shift {name!r}")
    return Member(member_id, doc.text(o, "name", where), team, street_code, grid_code, tuple(shifts[s] for s in names))


def _check_grid_of_street(doc: _Doc, where: str, grid_code: str, street_code: str, grids: Mapping[str, Grid]) -> None:
    grid = grids.get(grid_code)
    if grid is None:
        raise doc.error(f"{where} names unknown grid {grid_code}")
    if grid.street_code != street_code:
        raise doc.error(f"{where}: grid {grid_code} belongs to street {grid.street_code}, not {street_code}")


def _parse_gazetteer(
    doc: _Doc, raw: object, streets: Mapping[str, Street], grids: Mapping[str, Grid]
) -> tuple[Place, ...]:
    places = tuple(_place(doc, n, o, streets, grids) for n, o in enumerate(doc.objects(raw, "the place list"), 1))
    owner: dict[str, str] = {}
    for place in places:
        for key in place_keys(place):
            if not key:
                raise doc.error(f"place {place.name}: a name or alias is blank")
            if owner.setdefault(key, place.name) != place.name:
                raise doc.error(f"the name or alias {key!r} is used by both {owner[key]} and {place.name}")
    return places


def _place(doc: _Doc, n: int, o: Mapping[str, Any], streets: Mapping[str, Street], grids: Mapping[str, Grid]) -> Place:
    name = doc.text(o, "name", f"place #{n}")
    where = f"place {name}"
    street_code = doc.text(o, "street_code", where)
    if street_code not in streets:
        raise doc.error(f"{where} names unknown street {street_code}")
    grid_code = doc.text(o, "grid_code", where)
    _check_grid_of_street(doc, where, grid_code, street_code, grids)
    lat, lon = doc.number(o, "lat", where), doc.number(o, "lon", where)
    if not grids[grid_code].polygon.contains(Point(lon, lat)):
        raise doc.error(f"{where} at lon {lon}, lat {lat} lies outside its grid {grid_code}")
    kind = doc.choice(PlaceKind, o, "kind", where)
    return Place(name, doc.texts(o, "aliases", where), kind, street_code, grid_code, lat, lon)


def _parse_categories(doc: _Doc, raw: object) -> dict[str, Category]:
    categories = [_category(doc, n, o) for n, o in enumerate(doc.objects(raw, "the category list"), start=1)]
    doc.unique("category code", (c.code for c in categories))
    return {c.code: c for c in categories}


def _category(doc: _Doc, n: int, o: Mapping[str, Any]) -> Category:
    code = doc.text(o, "code", f"category #{n}")
    where = f"category {code}"
    if not _CATEGORY_CODE.fullmatch(code):
        raise doc.error(f"{where}: a code is 'family.name' in lower case, e.g. noise.renovation")
    disposition = doc.choice(Disposition, o, "disposition", where)
    team = doc.choice(Team, o, "team", where)
    if disposition is Disposition.POLICE and team is not Team.POLICE_STATION:
        raise doc.error(f"{where}: a POLICE disposition goes to team POLICE_STATION, not {team}")
    return Category(code, doc.text(o, "name", where), disposition, team)


def _parse_sla(doc: _Doc, raw: object, categories: Mapping[str, Category]) -> SlaPolicy:
    root = doc.obj(raw, "the document")
    extra = sorted(set(root) - {"default", "by_priority", "by_category", "leads"})
    if extra:
        raise doc.error(f"unknown key {extra[0]!r}")
    base = _override(doc, root.get("default"), "default", basis_required=False)
    if None in (base.accept_s, base.contact_s, base.arrive_s):
        raise doc.error(f"default must give all of {', '.join(SLA_KEYS)}")
    default = base.over(SlaTargets(0, 0, 0), "default")
    by_priority: dict[int, SlaOverride] = {}
    for key, value in doc.obj(root.get("by_priority", {}), "by_priority").items():
        if key not in {str(p) for p in PRIORITIES}:
            raise doc.error(f"by_priority names unknown priority {key!r} (priorities are 1 to 4)")
        by_priority[int(key)] = _override(doc, value, f"by_priority {key!r}")
    by_category: dict[str, SlaOverride] = {}
    for key, value in doc.obj(root.get("by_category", {}), "by_category").items():
        if key not in categories:
            raise doc.error(f"by_category names unknown category {key!r}")
        by_category[key] = _override(doc, value, f"by_category {key!r}")
    leads, leads_basis = _leads(doc, root.get("leads"))
    policy = SlaPolicy(default, by_priority, by_category, leads, leads_basis)
    _check_stage_order(doc, policy, categories)
    return policy


def _leads(doc: _Doc, raw: object) -> tuple[dict[str, timedelta], str]:
    """The at-risk warning times: issue 11's unless the file gives all three, with the basis they rest on."""
    if raw is None:
        return dict(ISSUE_LEADS), ISSUE_LEADS_BASIS
    spec = _override(doc, raw, "leads")
    given = {stage: getattr(spec, key) for stage, key in zip(LEAD_STAGES, SLA_KEYS, strict=True)}
    missing = [f"{stage}_s" for stage, value in given.items() if value is None]
    if missing:
        raise doc.error(f"leads must give all of {', '.join(SLA_KEYS)} (missing {', '.join(missing)})")
    return {stage: timedelta(seconds=value) for stage, value in given.items()}, spec.basis


def _override(doc: _Doc, raw: object, where: str, basis_required: bool = True) -> SlaOverride:
    spec = dict(doc.obj(raw, where))
    basis = spec.pop("basis", "")
    extra = sorted(set(spec) - set(SLA_KEYS))
    if extra:
        raise doc.error(f"{where} has unknown key {extra[0]!r}")
    if not isinstance(basis, str) or (basis_required and not basis.strip()):
        # The street is held to the seed's 1/3/8 minutes; a different target needs the rule that sets it.
        raise doc.error(f"{where}: an override needs a 'basis' naming the written rule it rests on")
    for key, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise doc.error(f"{where}: {key} must be a positive whole number of seconds, got {value!r}")
    return SlaOverride(**spec, basis=basis.strip())


def _check_stage_order(doc: _Doc, policy: SlaPolicy, categories: Mapping[str, Category]) -> None:
    # Overrides merge key by key, so a valid-looking override can still combine into an impossible target.
    for code in (*categories, ""):
        for priority in PRIORITIES:
            t = policy.targets(code, priority)
            if not t.accept_s <= t.contact_s <= t.arrive_s:
                raise doc.error(
                    f"{code or 'any other category'} at priority {priority} resolves to accept_s {t.accept_s}, "
                    f"contact_s {t.contact_s}, arrive_s {t.arrive_s}; no stage may be due before the one it follows"
                )
