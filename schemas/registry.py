"""Every kept .avsc version, indexed by record name and by CRC-64-AVRO fingerprint.

Adding an event type is adding one file, ``avro/<RecordName>.v<N>.avsc``. The highest version
of a record is the reader schema; all versions stay readable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.errors import RegistryError

AVRO_DIR = Path(__file__).with_name("avro")
_FILE_RE = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


@dataclass(frozen=True)
class RecordSchema:
    """One version of one record, parsed once."""

    name: str
    version: int
    topic: str
    key_field: str
    raw: Mapping[str, Any] = field(repr=False)
    parsed: Any = field(repr=False)
    fingerprint: bytes

    @cached_property
    def label(self) -> str:  # built once: the codec stamps it on every decoded event
        return f"{self.name}.v{self.version}"


def _load(path: Path) -> RecordSchema:
    match = _FILE_RE.match(path.name)
    if match is None:
        raise RegistryError(f"{path}: file name must be <RecordName>.v<N>.avsc")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw, named_schemas={})
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise RegistryError(f"{path}: {exc}") from exc
    name = match["name"]
    if raw.get("name") != name or raw.get("namespace") != "alarmflow.events":
        raise RegistryError(f"{path}: record must be alarmflow.events.{name}")
    topic, key = raw.get("alarmflow.topic"), raw.get("alarmflow.key")
    field_names = {f["name"] for f in raw["fields"]}
    missing = {"event_id", "occurred_at", "source"} - field_names
    if missing:
        raise RegistryError(f"{path}: every event needs {sorted(missing)}")
    if not isinstance(topic, str) or not isinstance(key, str) or key not in field_names:
        raise RegistryError(f"{path}: needs 'alarmflow.topic' and an 'alarmflow.key' naming a field")
    canonical = to_parsing_canonical_form(parsed)
    return RecordSchema(
        name=name,
        version=int(match["version"]),
        topic=topic,
        key_field=key,
        raw=raw,
        parsed=parsed,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class SchemaRegistry:
    """All kept versions; the newest version of each record is the reader schema."""

    def __init__(self, schemas: list[RecordSchema]) -> None:
        self.by_fingerprint: dict[bytes, RecordSchema] = {}
        self.current: dict[str, RecordSchema] = {}
        for schema in schemas:
            clash = self.by_fingerprint.get(schema.fingerprint)
            if clash is not None:
                raise RegistryError(f"{schema.label} and {clash.label} have the same fingerprint")
            self.by_fingerprint[schema.fingerprint] = schema
            newest = self.current.get(schema.name)
            if newest is None or schema.version > newest.version:
                self.current[schema.name] = schema

    @classmethod
    def load(cls, directory: Path = AVRO_DIR) -> SchemaRegistry:
        return cls([_load(path) for path in sorted(directory.glob("*.avsc"))])

    def __iter__(self) -> Iterator[RecordSchema]:
        return iter(self.by_fingerprint.values())

    def reader(self, name: str) -> RecordSchema:
        try:
            return self.current[name]
        except KeyError:
            raise RegistryError(f"unknown record type {name!r}") from None

    def topics(self) -> list[str]:
        """Topic suffixes that carry events, in a stable order."""
        return sorted({schema.topic for schema in self.current.values()})
