"""What a JSON column holds the same way on SQLite and PostgreSQL, and the checker every edge
that stores JSON calls (the `/v1` ingestion, webhooks, profile trait writes, the processor's
loader).

Refused, because one of the databases or the JSON reader cannot hold them faithfully:
- integers outside signed 64 bits (SQLite's JSON and orjson read them as floats, losing digits,
  or fail outright once the float overflows: one such event used to stop the processor);
- NaN and Infinity (not JSON; PostgreSQL's json type refuses them, orjson writes null);
- NUL characters in strings or keys (PostgreSQL text cannot hold them).

`find_unstorable` names the first problem by a dotted path (`properties.products.1.price`);
`check_storable` raises it as a 400 `DomainError` with that path as the field;
`might_be_unstorable` is the cheap test over raw JSON bytes that says whether the walk is
needed at all (valid JSON escapes NUL as \\u0000, and only a long digit run or a three-digit
exponent can leave the 64-bit or float range)."""

from __future__ import annotations

import math
from typing import Any

from rejse.errors import DomainError

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

INTEGER_TOO_LARGE = "integer beyond 64 bits (send it as a string)"
NOT_FINITE = "NaN and Infinity are not JSON numbers"
NUL_IN_TEXT = "NUL characters cannot be stored"
NUL_IN_KEY = "a key with a NUL character cannot be stored"


class UnstorableValue(DomainError):
    """A value the databases cannot hold; `field` is its dotted path."""

    status_code = 400


def _key(key: str) -> str:
    return key.replace("\x00", "\\u0000")


def find_unstorable(value: Any, *, path: str = "") -> tuple[str, str] | None:
    """(dotted path, problem) of the first value that cannot be stored, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, bool) or current is None:
            continue
        if isinstance(current, int):
            if not INT_MIN <= current <= INT_MAX:
                return where, INTEGER_TOO_LARGE
        elif isinstance(current, float):
            if not math.isfinite(current):
                return where, NOT_FINITE
        elif isinstance(current, str):
            if "\x00" in current:
                return where, NUL_IN_TEXT
        elif isinstance(current, dict):
            children = []
            for key, item in current.items():
                name = str(key)
                child = f"{where}.{_key(name)}" if where else _key(name)
                if "\x00" in name:
                    return child, NUL_IN_KEY
                children.append((item, child))
            stack.extend(reversed(children))  # report problems in document order
        elif isinstance(current, list | tuple):
            items = [(item, f"{where}.{i}" if where else str(i)) for i, item in enumerate(current)]
            stack.extend(reversed(items))
    return None


def check_storable(value: Any, *, path: str = "") -> None:
    """Raise `UnstorableValue` (400, field = the dotted path) for the first value that cannot
    be stored. For webhooks and profile writes: `check_storable(payload, path="traits")`."""
    problem = find_unstorable(value, path=path)
    if problem is not None:
        where, message = problem
        raise UnstorableValue(f"{where or 'value'}: {message}", field=where or "body")


# digits -> "0", "e"/"E" -> "e", "+"/"-" -> "s"; a translated body is searched with `in`/find,
# which is much cheaper than a regular expression over half a megabyte.
_SHAPE = bytes.maketrans(b"0123456789Ee+-", b"0000000000eess")
_LONG_DIGITS = b"0" * 19  # 19 digits can leave the signed 64-bit range (2**63 has 19)
_EXPONENTS = (b"0e000", b"0es000")  # a three-digit exponent can overflow a float
_BEFORE_NUMBER = frozenset(b":[, \t\r\n")


def might_be_unstorable(body: bytes | str) -> bool:
    """False when the raw JSON certainly holds nothing `find_unstorable` refuses (the common
    case: no walk needed); True when it might (then walk the parsed values)."""
    raw = body.encode() if isinstance(body, str) else body
    if b"\\u0000" in raw or b"NaN" in raw or b"Infinity" in raw:
        return True
    shape = raw.translate(_SHAPE)
    if _LONG_DIGITS in shape:
        return True
    return any(_exponent_number(raw, shape, needle) for needle in _EXPONENTS)


def _exponent_number(raw: bytes, shape: bytes, needle: bytes) -> bool:
    """Whether `needle` occurs as the exponent of a JSON number token (not inside an id such
    as a UUID's `3e456`): digits and dots back to a sign or a separator."""
    start = shape.find(needle)
    while start != -1:
        i = start
        while i > 0 and shape[i - 1] in b"0.":
            i -= 1
        if i > 0 and raw[i - 1] == ord("-"):
            i -= 1
        if i == 0 or raw[i - 1] in _BEFORE_NUMBER:
            return True
        start = shape.find(needle, start + 1)
    return False
