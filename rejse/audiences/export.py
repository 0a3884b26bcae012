"""An audience's members as CSV, streamed in constant memory.

The rows are read in keyset pages by profile id (`PAGE_SIZE` members, then their identifiers),
each page in its own short session, and written out as they are read: memory stays that of one
page whatever the audience's size, and no connection or snapshot is held while a slow client
reads. A member who joins or leaves during a long export may or may not be in it; nobody is
listed twice.

Columns: `profile_id` first, then the chosen identifier types (the profile's oldest value of
each), then the chosen traits (dotted paths; objects and lists as JSON). A cell that starts with
`=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, so that a spreadsheet
shows it as text instead of running it as a formula (CSV injection); the header row too.
UTF-8 without a byte order mark, rows ended by CRLF (RFC 4180)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from rejse.conditions import resolve_path
from rejse.errors import Unprocessable
from rejse.models.audiences import AudienceMembership
from rejse.models.profiles import Profile, ProfileIdentifier

PAGE_SIZE = 1000
MAX_IDENTIFIERS = 10
MAX_TRAITS = 50
MAX_NAME = 200
_IDENTIFIER_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # as profile_identifier.type holds
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportColumns:
    identifiers: tuple[str, ...] = ()
    traits: tuple[str, ...] = ()

    @property
    def header(self) -> list[str]:
        return ["profile_id", *self.identifiers, *self.traits]


def _names(raw: str | None, field: str, limit: int) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    names = tuple(part.strip() for part in raw.split(","))
    if any(not name for name in names):
        raise Unprocessable("a comma-separated list of names, none empty", field=field)
    if len(names) > limit:
        raise Unprocessable(f"at most {limit} names", field=field)
    if len(set(names)) != len(names):
        raise Unprocessable("names a column twice", field=field)
    for name in names:
        if len(name) > MAX_NAME:
            raise Unprocessable(f"a name is at most {MAX_NAME} characters", field=field)
    return names


def parse_columns(identifiers: str | None, traits: str | None) -> ExportColumns:
    """The export's columns from the query's comma-separated lists; a 422 naming the parameter
    for anything it cannot export."""
    ids = _names(identifiers, "identifiers", MAX_IDENTIFIERS)
    for name in ids:
        if not _IDENTIFIER_TYPE.match(name):
            raise Unprocessable(
                "identifier types are lower-case letters, digits and _ (email, user_id, phone)",
                field="identifiers",
            )
    names = _names(traits, "traits", MAX_TRAITS)
    for field, chosen, taken in (
        ("identifiers", ids, {"profile_id"}),
        ("traits", names, {"profile_id", *ids}),
    ):
        clash = sorted(taken & set(chosen))
        if clash:
            raise Unprocessable(
                f"{clash[0]!r} is a column already; each column is named once", field=field
            )
    return ExportColumns(identifiers=ids, traits=names)


def safe_cell(value: Any) -> str:
    """The cell's text: None empty, booleans true/false, objects and lists as JSON, and an
    apostrophe before anything a spreadsheet would run as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _page(
    session: Session, key: str, columns: ExportColumns, after: str | None, limit: int
) -> tuple[list[list[str]], str | None, int]:
    """The CSV rows of the live ones among the next `limit` members after profile id `after`,
    the last member id read, and how many members were read. Two short reads: the members
    (the membership key's index, in order, from the cursor) and then their profiles by id, so
    a page costs the same at the end of a million members as at the start."""
    stmt = (
        sa.select(col(AudienceMembership.profile_id))
        .where(col(AudienceMembership.audience_key) == key)
        .order_by(col(AudienceMembership.profile_id))
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(col(AudienceMembership.profile_id) > after)
    ids = list(session.execute(stmt).scalars())
    if not ids:
        return [], None, 0
    live = session.execute(
        sa.select(col(Profile.id), col(Profile.traits)).where(
            col(Profile.id).in_(ids), col(Profile.erased_at).is_(None)
        )
    )
    traits_of: dict[str, Any] = dict(live.tuples().all())
    first: dict[tuple[str, str], str] = {}
    if columns.identifiers and traits_of:
        identifiers = session.exec(
            select(ProfileIdentifier.profile_id, ProfileIdentifier.type, ProfileIdentifier.value)
            .where(
                col(ProfileIdentifier.profile_id).in_(list(traits_of)),
                col(ProfileIdentifier.type).in_(columns.identifiers),
            )
            .order_by(col(ProfileIdentifier.id))
        )
        for profile_id, type_, value in identifiers:
            first.setdefault((profile_id, type_), value)
    rows = []
    for profile_id in ids:
        if profile_id not in traits_of:
            continue  # erased (or gone): never exported
        traits = traits_of[profile_id] or {}
        row = [safe_cell(profile_id)]
        row += [safe_cell(first.get((profile_id, t))) for t in columns.identifiers]
        row += [safe_cell(resolve_path(traits, t)) for t in columns.traits]
        rows.append(row)
    return rows, ids[-1], len(ids)


def export_csv(
    engine: Engine, key: str, columns: ExportColumns, *, page_size: int = PAGE_SIZE
) -> Iterator[str]:
    """The CSV text of audience `key`'s live members, one chunk per page (the header first)."""
    yield _csv_text([[safe_cell(name) for name in columns.header]])
    after: str | None = None
    while True:
        with Session(engine) as session:
            rows, last, read = _page(session, key, columns, after, page_size)
        if rows:
            yield _csv_text(rows)
        if read < page_size:
            return
        after = last
