"""The schemas package's exceptions: one root, poison input separated from broken contracts."""

from __future__ import annotations

from typing import ClassVar


class SchemaError(Exception):
    """Root of every error raised by the schemas package."""


class RegistryError(SchemaError):
    """The .avsc files are unreadable, inconsistent, or a kept version no longer resolves."""


class WeakKey(SchemaError):
    """The phone HMAC key is too short to keep tokens from being guessed."""


class PoisonInput(SchemaError):
    """Input that breaks the contract: dead-letter it, never retry it."""

    error_class: ClassVar[str] = "PoisonInput"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Undecodable(PoisonInput):
    """The bytes are not a single-object-encoded Avro record we can read."""

    error_class = "Undecodable"


class UnknownSchema(PoisonInput):
    """The writer fingerprint matches no kept schema version."""

    error_class = "UnknownSchema"


class MissingField(PoisonInput):
    """A required field is absent or empty."""

    error_class = "MissingField"


class InvalidEnum(PoisonInput):
    """An enum value is not one of the schema's symbols."""

    error_class = "InvalidEnum"


class InvalidValue(PoisonInput):
    """A field has the wrong type or lies outside its documented range."""

    error_class = "InvalidValue"


class InvalidTime(PoisonInput):
    """occurred_at is before 2000-01-01 or more than 24 h after the message was published."""

    error_class = "InvalidTime"


class TooLarge(PoisonInput):
    """The payload is larger than the configured maximum."""

    error_class = "TooLarge"


class KeyMismatch(PoisonInput):
    """The Kafka key differs from the record's key field, so partitioning would be wrong."""

    error_class = "KeyMismatch"


class WrongTopic(PoisonInput):
    """The record type belongs on another topic."""

    error_class = "WrongTopic"


POISON_CLASSES: tuple[type[PoisonInput], ...] = (
    Undecodable,
    UnknownSchema,
    MissingField,
    InvalidEnum,
    InvalidValue,
    InvalidTime,
    TooLarge,
    KeyMismatch,
    WrongTopic,
)
