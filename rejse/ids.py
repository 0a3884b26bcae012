"""Opaque, time-ordered ids: 48-bit millisecond time + 80 random bits, written as 26 characters
of Crockford base32 (the ULID alphabet), so ids sort by creation time."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> 2 characters


def ulid() -> str:
    # 128 bits, left-aligned in 130 (13 pairs of 5-bit characters): sortable, 26 characters.
    value = ((int(time.time() * 1000) & 0xFFFFFFFFFFFF) << 82) | (
        int.from_bytes(os.urandom(10), "big") << 2
    )
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in range(120, -1, -10)])


def new_id(prefix: str) -> str:
    """`prf_01J...` (26 chars after the prefix)."""
    return f"{prefix}_{ulid()}"
