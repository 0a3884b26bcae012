"""Input rules every request schema shares (no framework code, no rejse imports):

- `Omittable[T]`: a field a client may leave out (it stays as it is) but not set to null; its
  JSON schema says so (no null, no default);
- `Text`: a string PostgreSQL can store (no NUL character);
- `find_lone_surrogate(value)`: the first string or key of parsed JSON that holds an unpaired
  UTF-16 surrogate (`"\\ud800"` is valid JSON, yet not Unicode: neither database stores it);
- `Instant`: a point in time as stored, timezone-aware UTC (a naive value is taken as UTC),
  refused when it has no UTC value (`0001-01-01T00:00:00+14:00` lies before year 1).
- integer bounds for parameters (`MAX_OFFSET`, `MAX_INT32`), so that the database never sees an
  integer its column cannot hold;
- the size limit of a control-plane body (`MAX_CONTROL_PLANE_BODY`).

What a JSON column can hold (no NUL, NaN or integers beyond 64 bits) is `rejse.events.values`;
docs/development.md ("Input rules") says how the API applies both."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import AfterValidator, Field

T = TypeVar("T")

# The largest offset a list endpoint pages to: far beyond any real list, and a bound the
# database is never asked to exceed.
MAX_OFFSET = 10_000_000
# Versions and integer ids are 32-bit columns on PostgreSQL.
MAX_INT32 = 2**31 - 1
# The control plane takes definitions, templates and settings, not data: 1 MB is far above any
# real request, and what the API buffers at most per request.
MAX_CONTROL_PLANE_BODY = 1024 * 1024

NUL_MESSAGE = "must not contain NUL characters"
SURROGATE_MESSAGE = "holds an unpaired UTF-16 surrogate (\\ud800-\\udfff): not Unicode text"


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold NUL characters
        raise ValueError(NUL_MESSAGE)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def _in_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("has no UTC time between the years 1 and 9999") from None


Instant = Annotated[dt.datetime, AfterValidator(_in_utc)]


def _without_default(schema: dict[str, Any]) -> None:
    # The default of an omittable field is "unchanged", not the null pydantic would print.
    schema.pop("default", None)


if TYPE_CHECKING:
    # To the type checker the field is optional: left out, it reads as None.
    Omittable = Annotated[T | None, ...]
else:

    class Omittable:
        """`name: Omittable[str] = None`: left out is fine (reads as None, `exclude_unset`
        drops it), an explicit null fails validation as any other wrong type does: the
        default is never validated, and the validated type has no None in it."""

        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[item, Field(json_schema_extra=_without_default)]


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def may_hold_surrogate(body: bytes) -> bool:
    """Whether raw JSON can decode to a lone surrogate: only through a `\\uD800`-`\\uDFFF`
    escape (a raw one is not UTF-8, so no JSON reader takes it)."""
    return b"\\ud" in body or b"\\uD" in body


def find_lone_surrogate(value: Any) -> tuple[str, str] | None:
    """(dotted path, problem) of the first string or key that is not Unicode, or None. A key
    names its object (the key itself cannot be printed)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if not _is_unicode(current):
                return where or "body", SURROGATE_MESSAGE
        elif isinstance(current, dict):
            children = []
            for key, item in current.items():
                if isinstance(key, str) and not _is_unicode(key):
                    return where or "body", SURROGATE_MESSAGE
                children.append((item, f"{where}.{key}" if where else str(key)))
            stack.extend(reversed(children))  # report in document order
        elif isinstance(current, list):
            items = [(item, f"{where}.{i}" if where else str(i)) for i, item in enumerate(current)]
            stack.extend(reversed(items))
    return None
