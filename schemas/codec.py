"""Avro single-object encoding (``C3 01`` + 8-byte little-endian CRC-64-AVRO + body) and the JSON form.

Decoding looks the writer schema up by fingerprint among every kept version and resolves it to
the reader schema, so producers on different versions can publish side by side.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from schemas.errors import InvalidEnum, InvalidValue, PoisonInput, RegistryError, Undecodable, UnknownSchema
from schemas.event import Event
from schemas.jsonform import compile_from_json, compile_to_json
from schemas.registry import RecordSchema, SchemaRegistry

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10


class Codec:
    """Encodes and decodes every record of a registry; schemas are parsed once, up front."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or SchemaRegistry.load()
        self._to_json: dict[str, Callable[[Any], Any]] = {}
        self._from_json: dict[str, Callable[[Any, str], Any]] = {}
        for name, schema in self.registry.current.items():
            self._to_json[name] = compile_to_json(schema.raw)
            self._from_json[name] = compile_from_json(schema.raw)

    def schema_for(self, event: Event) -> RecordSchema:
        return self.registry.reader(event.type)

    def key_of(self, event: Event) -> str:
        return str(event.fields[self.schema_for(event).key_field])

    def topic_of(self, event: Event) -> str:
        """The topic suffix (e.g. ``alarms``); the deployment adds its prefix."""
        return self.schema_for(event).topic

    def encode(self, event: Event, version: int | None = None) -> bytes:
        """Single-object encoding with the current schema, or an older kept ``version``."""
        schema = self.registry.reader(event.type)
        if version is not None and version != schema.version:
            schema = self._version(event.type, version)
        buffer = io.BytesIO()
        buffer.write(MAGIC + schema.fingerprint)
        try:
            schemaless_writer(buffer, schema.parsed, dict(event.fields))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidValue(f"{event.type}: cannot encode: {exc}") from exc
        return buffer.getvalue()

    def _version(self, name: str, version: int) -> RecordSchema:
        for schema in self.registry:
            if schema.name == name and schema.version == version:
                return schema
        raise RegistryError(f"no kept version {version} of {name}")

    def writer_of(self, data: bytes) -> RecordSchema:
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise Undecodable("not Avro single-object encoding: the first two bytes must be C3 01")
        fp = bytes(data[2:HEADER_SIZE])
        schema = self.registry.by_fingerprint.get(fp)
        if schema is None:
            raise UnknownSchema(f"fingerprint {fp.hex()} matches no kept schema version")
        return schema

    def decode(self, data: bytes) -> Event:
        """Bytes to Event, resolved to the current reader schema; raises PoisonInput subclasses."""
        writer = self.writer_of(data)
        reader = self.registry.current[writer.name]
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            if reader is writer:
                fields = schemaless_reader(body, writer.parsed, None)
            else:
                fields = schemaless_reader(body, writer.parsed, reader.parsed)
        except EOFError:
            raise Undecodable(f"{writer.label}: the body ends before the record does") from None
        except IndexError:
            raise InvalidEnum(f"{writer.label}: an enum or union index is outside the schema") from None
        except SchemaResolutionError as exc:
            cls = InvalidEnum if "symbol" in str(exc) else Undecodable
            raise cls(f"{writer.label}: {exc}") from None
        except (ValueError, TypeError, OverflowError, UnicodeDecodeError, MemoryError) as exc:
            raise Undecodable(f"{writer.label}: {type(exc).__name__}: {exc}") from None
        if body.tell() != len(data):
            raise Undecodable(f"{writer.label}: {len(data) - body.tell()} trailing bytes after the record")
        return Event(writer.name, cast(dict[str, Any], fields), writer.label)

    def to_json(self, event: Event) -> dict[str, Any]:
        """The JSON form: ``{"type": name, ...fields}`` with plain values."""
        body: dict[str, Any] = self._to_json[event.type](event.fields)
        return {"type": event.type, **body}

    def from_json(self, obj: Any) -> Event:
        """The JSON form to an Event of the current schema; raises PoisonInput with the field path."""
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise InvalidValue('an event is a JSON object with a "type" naming its record')
        convert = self._from_json.get(obj["type"])
        if convert is None:
            raise UnknownSchema(f"unknown record type {obj['type']!r}")
        fields = cast(dict[str, Any], convert(obj, ""))
        return Event(obj["type"], fields, self.registry.current[obj["type"]].label)


__all__ = ["MAGIC", "Codec", "Event", "PoisonInput"]
