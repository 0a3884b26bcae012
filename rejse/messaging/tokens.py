"""Signed tracking tokens for open pixels, click redirects, unsubscribe and preference links.

A token is `<payload>.<signature>`, both base64url: the payload is `<kind>:<message id>[:<link
index>]`, the signature the first 16 bytes of HMAC-SHA256 under a key derived from the secret
key. Ids cannot be guessed or altered; a token of one kind does not work for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

KINDS = ("o", "c", "u", "p")  # open, click, unsubscribe, preference centre


class InvalidToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of `text`, which must be their one unpadded base64url spelling: a lenient
    decoder would also take unused low bits set and characters outside the alphabet, so one
    token would have many spellings."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"rejse.messaging.tracking:" + secret.encode()).digest()


def sign(secret: str, kind: str, message_id: str, index: int | None = None) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    payload = f"{kind}:{message_id}" + (f":{index}" if index is not None else "")
    mac = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()[:16]
    return f"{_b64(payload.encode())}.{_b64(mac)}"


def verify(secret: str, token: str, kind: str) -> tuple[str, int | None]:
    """(message id, link index) of a valid token of `kind`; raises InvalidToken otherwise."""
    try:
        payload_b64, mac_b64 = token.split(".", 1)
        payload = _unb64(payload_b64)
        mac = _unb64(mac_b64)
    except (ValueError, TypeError):
        raise InvalidToken("malformed token") from None
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, expected):
        raise InvalidToken("bad signature")
    parts = payload.decode(errors="replace").split(":")
    if parts[0] != kind or len(parts) not in (2, 3):
        raise InvalidToken("wrong token kind")
    index = None
    if len(parts) == 3:
        if not parts[2].isdigit():
            raise InvalidToken("malformed token")
        index = int(parts[2])
    return parts[1], index
