"""Personal fields (``"alarmflow.personal": "phone"`` in a schema) become a keyed token and a mask.

The token is an HMAC-SHA256 of the digits under a key from the environment, so analysts can
link repeat callers without ever seeing a number.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from schemas.errors import WeakKey
from schemas.registry import RecordSchema

MIN_KEY_BYTES = 16


def normalise_phone(phone: str) -> str:
    """Digits only, without China's +86 prefix, so one caller gets one token however it was typed."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


def mask_phone(phone: str) -> str:
    """``13812341234`` → ``138****1234``; short numbers keep only their last two digits."""
    digits = normalise_phone(phone)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


class Redactor:
    """Replaces each personal field ``f`` by ``f_token`` and ``f_masked`` in the JSON form."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise WeakKey(f"the phone HMAC key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    def __repr__(self) -> str:
        return "Redactor(key=***)"

    def token(self, phone: str) -> str:
        return hmac.new(self._key, normalise_phone(phone).encode(), hashlib.sha256).hexdigest()[:32]

    def redact(self, schema: RecordSchema, body: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(body)
        for field in schema.raw["fields"]:
            if field.get("alarmflow.personal") != "phone":
                continue
            name = field["name"]
            value = out.pop(name, None)
            out[f"{name}_token"] = None if value is None else self.token(value)
            out[f"{name}_masked"] = None if value is None else mask_phone(value)
        return out
