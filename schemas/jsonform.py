"""The contract's JSON form: plain JSON values, ISO-8601 times with offset, decimals as strings.

Converters are compiled once per schema into closures, because the projection renders every
event as JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast
from zoneinfo import ZoneInfo

from schemas.errors import InvalidEnum, InvalidTime, InvalidValue, MissingField

DISTRICT_TZ = ZoneInfo("Asia/Shanghai")

Convert = Callable[[Any, str], Any]
Names = dict[str, Mapping[str, Any]]

_PRIMITIVE_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "float": (float, int),
    "double": (float, int),
    "boolean": (bool,),
}


def _resolve(schema: Any, names: Names, namespace: str) -> Any:
    if isinstance(schema, str) and schema not in _PRIMITIVE_TYPES and schema not in ("null", "bytes"):
        full = schema if "." in schema else f"{namespace}.{schema}"
        return names[full]
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        ns = schema.get("namespace", namespace)
        names[f"{ns}.{schema['name']}"] = schema
    return schema


def format_time(value: datetime) -> str:
    """ISO-8601 with milliseconds and the district's +08:00 offset."""
    return value.astimezone(DISTRICT_TZ).isoformat(timespec="milliseconds")


def parse_time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidTime(f"{path}: expected an ISO-8601 string with offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTime(f"{path}: {value!r} is not ISO-8601") from None
    if parsed.tzinfo is None:
        raise InvalidTime(f"{path}: {value!r} has no UTC offset (write e.g. +08:00)")
    return parsed.astimezone(UTC)


def _decimal_from_json(schema: Mapping[str, Any]) -> Convert:
    scale, precision = int(schema.get("scale", 0)), int(schema["precision"])
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any, path: str) -> Decimal:
        if not isinstance(value, str):
            raise InvalidValue(f'{path}: a decimal is written as a string, e.g. "9000.00"')
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise InvalidValue(f"{path}: {value!r} is not a decimal number") from None
        if not number.is_finite() or number.as_tuple().exponent < -scale:  # type: ignore[operator]
            raise InvalidValue(f"{path}: {value!r} has more than {scale} decimal places")
        number = number.quantize(quantum)
        if len(number.as_tuple().digits) > precision:
            raise InvalidValue(f"{path}: {value!r} exceeds {precision} digits")
        return number

    return convert


def compile_from_json(schema: Any, names: Names | None = None, namespace: str = "") -> Convert:
    """A converter from the JSON form to the datum fastavro writes; raises PoisonInput."""
    names = {} if names is None else names
    schema = _resolve(schema, names, namespace)
    if isinstance(schema, list):
        return _union_from_json(schema, names, namespace)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "timestamp-millis":
        return parse_time
    if logical == "decimal":
        return _decimal_from_json(schema)
    if kind == "record":
        return _record_from_json(schema, names, schema.get("namespace", namespace))
    if kind == "enum":
        symbols = frozenset(schema["symbols"])

        def enum(value: Any, path: str) -> str:
            if value not in symbols:
                raise InvalidEnum(f"{path}: {value!r} is not one of {sorted(symbols)}")
            return str(value)

        return enum
    if kind == "array":
        item = compile_from_json(schema["items"], names, namespace)

        def array(value: Any, path: str) -> list[Any]:
            if not isinstance(value, list):
                raise InvalidValue(f"{path}: expected a list")
            return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

        return array
    if kind == "bytes":

        def raw_bytes(value: Any, path: str) -> bytes:
            if not isinstance(value, str):
                raise InvalidValue(f"{path}: bytes are written as base64 strings")
            return base64.b64decode(value)

        return raw_bytes
    if isinstance(kind, dict):
        return compile_from_json(kind, names, namespace)
    return _primitive_from_json(kind)


def _primitive_from_json(kind: str) -> Convert:
    allowed = _PRIMITIVE_TYPES[kind]

    def primitive(value: Any, path: str) -> Any:
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise InvalidValue(f"{path}: expected {kind}, got {value!r}")
        return float(cast(float, value)) if kind in ("float", "double") else value

    return primitive


def _union_from_json(branches: list[Any], names: Names, namespace: str) -> Convert:
    others = [b for b in branches if b != "null"]
    if len(others) != 1:
        raise ValueError("only [null, T] unions are part of the contract")
    inner = compile_from_json(others[0], names, namespace)

    def union(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return union


def _record_from_json(schema: Mapping[str, Any], names: Names, namespace: str) -> Convert:
    fields = [(f["name"], compile_from_json(f["type"], names, namespace), f) for f in schema["fields"]]
    known = frozenset(f[0] for f in fields)

    def record(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidValue(f"{path or schema['name']}: expected an object")
        unknown = set(value) - known - {"type"}
        if unknown:
            raise InvalidValue(f"{path or schema['name']}: unknown field(s) {sorted(unknown)}")
        out: dict[str, Any] = {}
        for name, convert, spec in fields:
            where = f"{path}.{name}" if path else name
            if name in value:
                out[name] = convert(value[name], where)
            elif "default" in spec:
                out[name] = spec["default"]
            else:
                raise MissingField(f"{where}: required field is missing")
        return out

    return record


def compile_to_json(schema: Any, names: Names | None = None, namespace: str = "") -> Callable[[Any], Any]:
    """A converter from a datum fastavro read to the JSON form."""
    names = {} if names is None else names
    schema = _resolve(schema, names, namespace)
    if isinstance(schema, list):
        others = [b for b in schema if b != "null"]
        inner = compile_to_json(others[0], names, namespace)
        return lambda v: None if v is None else inner(v)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "timestamp-millis":
        return format_time
    if logical == "decimal":
        return str
    if kind == "record":
        ns = schema.get("namespace", namespace)
        fields = [(f["name"], compile_to_json(f["type"], names, ns)) for f in schema["fields"]]
        return lambda v: {name: convert(v[name]) for name, convert in fields}
    if kind == "array":
        item = compile_to_json(schema["items"], names, namespace)
        return lambda v: [item(x) for x in v]
    if kind == "bytes":
        return lambda v: base64.b64encode(v).decode("ascii")
    if isinstance(kind, dict):
        return compile_to_json(kind, names, namespace)
    return lambda v: v
