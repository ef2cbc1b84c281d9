"""The codec: round trips for every record, single-object framing, version resolution."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import MAGIC, Codec
from schemas.errors import RegistryError
from schemas.jsonform import format_time
from schemas.registry import AVRO_DIR, SchemaRegistry

CODEC = Codec()


def _crc64_avro(data: bytes) -> bytes:
    """The Avro spec's reference CRC-64-AVRO, written out here as an independent test vector."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def strategy(schema: Any, names: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """JSON-form values for an Avro schema, as a publisher would write them."""
    names = {} if names is None else names
    if isinstance(schema, str) and schema in names:
        schema = names[schema]
    if isinstance(schema, list):
        inner = next(b for b in schema if b != "null")
        return st.none() | strategy(inner, names)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "timestamp-millis":
        millis = st.integers(946_684_800_000, 4_102_444_800_000)
        return millis.map(lambda ms: format_time(datetime.fromtimestamp(ms / 1000, tz=UTC)))
    if logical == "decimal":
        return st.decimals(min_value=0, max_value=10**9, places=schema["scale"], allow_nan=False).map(str)
    if isinstance(kind, dict):
        return strategy(kind, names)
    if kind == "record":
        names[schema["name"]] = schema
        return st.fixed_dictionaries({f["name"]: _field(f, names) for f in schema["fields"]})
    if kind == "enum":
        names[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(strategy(schema["items"], names), max_size=4)
    if kind == "bytes":
        return st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
    return {
        "string": st.text(max_size=30),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "double": st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
    }[kind]


def _field(field: dict[str, Any], names: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = field.get("alarmflow.min"), field.get("alarmflow.max")
    base = strategy(field["type"], names)
    if low is not None and field["type"] == "int":
        return st.integers(low, high)
    if low is not None:
        return st.none() | st.floats(low, high, allow_nan=False)
    return base


@pytest.mark.parametrize("name", sorted(CODEC.registry.current))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_record_round_trips_json_to_wire_and_back(name: str, data: st.DataObject) -> None:
    schema = CODEC.registry.reader(name)
    body = data.draw(strategy(dict(schema.raw)))
    obj = {"type": name, **body}
    event = CODEC.from_json(obj)
    wire = CODEC.encode(event)
    assert wire[:2] == MAGIC and wire[2:10] == schema.fingerprint
    back = CODEC.decode(wire)
    assert back.type == name
    assert back.fields == event.fields
    assert CODEC.to_json(back) == json.loads(json.dumps(CODEC.to_json(event)))
    assert CODEC.from_json(CODEC.to_json(back)).fields == event.fields


def test_fingerprint_is_the_spec_crc64_of_the_canonical_form() -> None:
    from fastavro.schema import to_parsing_canonical_form

    for schema in CODEC.registry:
        canonical = to_parsing_canonical_form(schema.parsed).encode()
        assert schema.fingerprint == _crc64_avro(canonical), schema.label
    assert _crc64_avro(b'"int"').hex() == "8f5c393f1ad57572"  # the spec's test vector, little-endian


def _alarm_json(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "AlarmReceived",
        "event_id": "7b0a4c1e-6a3e-4a55-9a53-0d8f1a2b3c4d",
        "occurred_at": "2026-05-12T20:15:00+08:00",
        "source": "cad110",
        "alarm_id": "A1",
        "channel": "CALL_110",
        "category": "noise.renovation",
        "priority": 3,
        "location": {"address": "云上澜苑 3幢"},
        "description": "装修噪音",
    }
    obj.update(extra)
    return obj


def test_v1_producer_is_read_as_v2_with_the_default() -> None:
    event = CODEC.from_json(_alarm_json(caller_language="zh-CN"))
    v1 = CODEC.encode(event, version=1)
    v2 = CODEC.encode(event)
    assert v1[2:10] != v2[2:10]
    from_v1, from_v2 = CODEC.decode(v1), CODEC.decode(v2)
    assert from_v1.writer == "AlarmReceived.v1" and from_v1.fields["caller_language"] is None
    assert from_v2.writer == "AlarmReceived.v2" and from_v2.fields["caller_language"] == "zh-CN"
    assert {k: v for k, v in from_v1.fields.items() if k != "caller_language"} == {
        k: v for k, v in from_v2.fields.items() if k != "caller_language"
    }


def test_v2_data_is_readable_by_a_v1_reader() -> None:
    """Forward compatibility: consumers still on v1 keep working while producers move to v2."""
    v1 = next(s for s in CODEC.registry if s.label == "AlarmReceived.v1")
    wire = CODEC.encode(CODEC.from_json(_alarm_json(caller_language="zh-CN")))
    v2 = CODEC.registry.by_fingerprint[wire[2:10]]
    record = schemaless_reader(io.BytesIO(wire[10:]), v2.parsed, v1.parsed)
    assert record["alarm_id"] == "A1" and "caller_language" not in record


def resolves(writer: dict[str, Any], reader: dict[str, Any], sample: dict[str, Any]) -> bool:
    """Whether data written with ``writer`` reads under ``reader``: the check every kept version passes."""
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(writer, named_schemas={}), sample)
    buf.seek(0)
    try:
        schemaless_reader(buf, parse_schema(writer, named_schemas={}), parse_schema(reader, named_schemas={}))
    except Exception:  # noqa: BLE001 - any failure means "does not resolve"
        return False
    return True


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_kept_version_resolves_to_the_current_reader(data: st.DataObject) -> None:
    for schema in CODEC.registry:
        reader = CODEC.registry.reader(schema.name)
        sample = CODEC.from_json({"type": schema.name, **data.draw(strategy(dict(reader.raw)))}).fields
        # a field the newer version dropped (OutcomeStatsUpdated.v1's durations_ms): its JSON form is its value
        dropped = data.draw(strategy(dict(schema.raw)))
        writer_sample = {f["name"]: sample.get(f["name"], dropped[f["name"]]) for f in schema.raw["fields"]}
        assert resolves(dict(schema.raw), dict(reader.raw), writer_sample), schema.label


def test_a_breaking_change_is_caught(tmp_path: Path) -> None:
    v2 = json.loads((AVRO_DIR / "AlarmReceived.v2.avsc").read_text())
    v3 = json.loads(json.dumps(v2))
    v3["fields"].append({"name": "district_code", "type": "string"})  # no default: breaks old data
    sample = CODEC.from_json(_alarm_json()).fields
    assert resolves(v2, v2, dict(sample))
    assert not resolves(v2, v3, dict(sample))


def test_registry_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "Broken.v1.avsc").write_text('{"type": "record", "name": "Broken", "fields": [')
    with pytest.raises(RegistryError, match=r"Broken\.v1\.avsc"):
        SchemaRegistry.load(tmp_path)
    (tmp_path / "Broken.v1.avsc").unlink()
    (tmp_path / "nameless.avsc").write_text("{}")
    with pytest.raises(RegistryError, match="file name must be"):
        SchemaRegistry.load(tmp_path)


def test_json_form_is_plain() -> None:
    event = CODEC.from_json(
        {
            "type": "MediationConcluded",
            "event_id": "7b0a4c1e-6a3e-4a55-9a53-0d8f1a2b3c4d",
            "occurred_at": "2026-05-12T12:15:00Z",
            "source": "gridapp",
            "case_id": "A1",
            "worker_id": "w1",
            "outcome": "RESOLVED",
            "compensation": "9000",
            "summary": "ok",
        }
    )
    out = CODEC.to_json(event)
    assert out["compensation"] == "9000.00"
    assert out["occurred_at"] == "2026-05-12T20:15:00.000+08:00"
    assert CODEC.to_json(CODEC.from_json(_alarm_json()))["location"]["lat"] is None
