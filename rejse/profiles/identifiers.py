"""Identifier rules: types, normalisation, blocked values, salted tombstone digests."""

from __future__ import annotations

import hashlib
import hmac

KNOWN_TYPES = ("user_id", "anonymous_id", "email", "phone", "device_id", "loyalty_id")
# Merge priority: a profile is anchored by its user_id, then its email, then the rest.
PRIORITY = {"user_id": 0, "email": 1}
MAX_VALUE_LEN = 255
# Values that identify nobody (Segment Unify "blocked values"); compared case-insensitively.
BLOCKED_VALUES = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "undefined",
        "anonymous",
        "unknown",
        "n/a",
        "na",
        "-1",
        "0",
        "false",
        "true",
        "nan",
        "[object object]",
        "{}",
        "[]",
    }
)
TRAIT_IDENTIFIERS = ("email", "phone", "loyalty_id")  # traits that are also identifiers


def normalise(type_: str, value: object) -> str | None:
    """The stored form of an identifier, or None when it is blocked or unusable."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    if text.lower() in BLOCKED_VALUES or len(text) > MAX_VALUE_LEN:
        return None
    if type_ == "email":
        text = text.lower()
        if "@" not in text:
            return None
    elif type_ == "phone":
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) < 5:
            return None
        text = ("+" if text.startswith("+") else "") + digits
    return text


def priority(type_: str) -> int:
    return PRIORITY.get(type_, 2)


def tombstone(secret: str, type_: str, value: str) -> str:
    """Salted (keyed) hash of an erased identifier: no PII kept, still recognisable."""
    return hmac.new(secret.encode(), f"{type_}\x00{value}".encode(), hashlib.sha256).hexdigest()
