"""API roles and key material (no framework code)."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    marketer = "marketer"
    analyst = "analyst"  # read-only
    sales = "sales"
    ingest = "ingest"


KEY_PREFIX = "rjk"


def generate_key() -> str:
    """A new API key: `rjk_<8 hex id>_<43 char secret>`; only its hash is stored."""
    return f"{KEY_PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    # Keys carry 256 bits of entropy, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str:
    """The non-secret part used to name a key in lists and logs."""
    parts = key.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] == KEY_PREFIX else hash_key(key)[:8]
