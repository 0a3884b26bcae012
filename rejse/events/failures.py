"""How the event processor judges a failure: whether a retry could fix it, and a reason to
store and log that holds no personal data.

Permanent: the event's own data is the problem, so every retry fails the same way (a value the
database refuses, a row that cannot be decoded, a data error in a subscriber). Such an event
goes to the dead letters at once. Anything else (locks, connections, Temporal, a bug that a
deploy fixes) is retried with backoff first.

Exception messages are not stored: a database error's text carries the statement's values and a
subscriber's message may name a person. The reason is the exception type, a database error's
SQLSTATE / SQLite error name, our own PII-free messages, and where in our code it was raised."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import sqlalchemy as sa

from rejse.events.store import Undecodable, UnstorableEvent
from rejse.events.values import UnstorableValue

# Data errors: raised again by every retry of the same event.
_PERMANENT: tuple[type[BaseException], ...] = (
    ValueError,  # incl. UnicodeError, JSON decode errors, pydantic's ValidationError
    TypeError,
    ArithmeticError,  # OverflowError (e.g. an integer SQLite cannot bind), ZeroDivisionError
    RecursionError,
    UnstorableValue,
)
_OURS: tuple[type[BaseException], ...] = (Undecodable, UnstorableEvent, UnstorableValue)
_ROOT = Path(__file__).resolve().parents[2]


def is_permanent(exc: BaseException) -> bool:
    """Whether a retry of the same event cannot succeed."""
    if isinstance(exc, sa.exc.DataError):  # SQLSTATE class 22: the value itself is refused
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return False  # locks, connections, races on unique keys: try again later
    if isinstance(exc, sa.exc.StatementError):  # raised while binding a value
        return exc.orig is not None and isinstance(exc.orig, _PERMANENT)
    return isinstance(exc, _PERMANENT)


def failure_reason(exc: BaseException) -> str:
    """`<Type> (<detail>) at <file>:<line> (<function>)`, free of personal data."""
    detail = ""
    if isinstance(exc, _OURS):
        detail = str(exc)
    elif isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "sqlite_errorname", None)
        detail = type(exc.orig).__name__ + (f" {code}" if code else "")
    elif isinstance(exc, sa.exc.StatementError) and exc.orig is not None:
        detail = type(exc.orig).__name__
    reason = type(exc).__name__ + (f" ({detail})" if detail else "")
    where = _origin(exc)
    return f"{reason} at {where}" if where else reason


def _origin(exc: BaseException) -> str | None:
    """The innermost frame of the traceback that is our code (not the standard library nor an
    installed package)."""
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        path = Path(frame.f_code.co_filename)
        if "site-packages" in path.parts or path.is_relative_to(sys.base_prefix):
            continue
        if path.is_relative_to(_ROOT):
            found = f"{path.relative_to(_ROOT)}:{lineno} ({frame.f_code.co_name})"
    return found
