"""rejse's webhook signature, inbound and outbound (Stripe-style):

    X-Rejse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">[,v1=<hex>...]

Several `v1` values are allowed so a sender can rotate its secret; the receiver accepts the
message when any value matches any of its secrets and `t` is within the tolerance. A header
that is not of this shape (see `parse`) verifies nothing."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable

HEADER = "X-Rejse-Signature"
TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


# What a well-formed header holds. `t` is ASCII digits of a bounded length (str.isdigit also
# takes "²" or Arabic-Indic digits, which int() refuses, and int() refuses 5,000 digits), `v1`
# exactly one SHA-256 in hex (hmac.compare_digest raises on non-ASCII text).
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_SCHEME = re.compile(r"[a-z][a-z0-9]{0,15}", re.ASCII)
MAX_HEADER_LENGTH = 2048  # room for t and a few dozen v1 values, no more
MAX_SIGNATURES = 8  # v1 values per header: a rotation needs two


def parse(header: str | None) -> tuple[int, list[str]] | None:
    """(t, v1 values in lower case) of a well-formed header, else None: a missing, repeated
    or malformed `t`, no `v1`, a `v1` that is not 64 hex digits, a part that is not
    `scheme=value`, too many values or an overlong header. Other schemes (`v0=...`) are
    skipped, so a sender may add new ones."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        return None
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not _SCHEME.fullmatch(key):
            return None
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return None  # which t did the sender mean? refuse rather than pick one
            timestamp = int(value)
        elif key == "v1":
            if not _HEX_DIGEST.fullmatch(value):
                return None
            candidates.append(value.lower())
    if timestamp is None or not candidates or len(candidates) > MAX_SIGNATURES:
        return None
    return timestamp, candidates


def verify(
    body: bytes,
    header: str | None,
    secrets: Iterable[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when a `v1` of a well-formed `header` matches `body` under one of `secrets`, in
    time. Never raises on what a sender put in the header."""
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    ok = False
    for secret in secrets:  # compare every pair: no early exit that leaks timing
        expected = _digest(secret, timestamp, body)
        for candidate in candidates:
            ok |= hmac.compare_digest(expected, candidate)
    return ok
