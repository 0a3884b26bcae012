"""CSV export of an audience's members: the columns asked for, safe against CSV injection,
streamed in pages so memory does not grow with the audience, on both databases."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import tracemalloc

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from rejse.audiences.export import PAGE_SIZE, ExportColumns, export_csv, parse_columns, safe_cell
from rejse.errors import Unprocessable
from rejse.models.profiles import Profile
from rejse.roles import Role
from tests.audiences.api_helpers import seed_members
from tests.conftest import auth


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_export_has_the_chosen_columns_and_defuses_formulas(client, engine, keys):
    nasty = {
        0: {"first_name": '=HYPERLINK("http://evil","x")', "address": {"city": "Aarhus"}},
        1: {"first_name": "+45 1234", "address": {"city": "-2+3"}},
        2: {"first_name": "@SUM(A1)", "address": {"city": "\tTab"}, "vip": True},
        3: {"first_name": 'Åse, "the" boss\nline two', "tags": ["a", "b"]},
    }
    ids = seed_members(engine, "vip", 5, traits=lambda i: nasty.get(i, {"first_name": "Bo"}))
    with Session(engine) as s:  # an erased member is never exported
        row = s.get(Profile, ids[4])
        assert row is not None
        row.erased_at = dt.datetime.now(dt.UTC)
        s.add(row)
        s.commit()
    r = await client.get(
        "/api/audiences/vip/export",
        params={"identifiers": "email,user_id", "traits": "first_name,address.city,vip,tags"},
        headers=auth(keys[Role.analyst]),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="audience-vip.csv"'
    assert "\r\n" in r.text
    table = rows(r.text)
    assert table[0] == [
        "profile_id",
        "email",
        "user_id",
        "first_name",
        "address.city",
        "vip",
        "tags",
    ]
    assert table[1:] == [
        [ids[0], "m0@example.com", "u0", '\'=HYPERLINK("http://evil","x")', "Aarhus", "", ""],
        [ids[1], "m1@example.com", "u1", "'+45 1234", "'-2+3", "", ""],
        [ids[2], "m2@example.com", "u2", "'@SUM(A1)", "'\tTab", "true", ""],
        [ids[3], "m3@example.com", "u3", 'Åse, "the" boss\nline two', "", "", '["a","b"]'],
    ]


async def test_export_without_columns_lists_profile_ids(client, engine, keys):
    ids = seed_members(engine, "few", 3)
    r = await client.get("/api/audiences/few/export", headers=auth(keys[Role.marketer]))
    assert r.status_code == 200, r.text
    assert rows(r.text) == [["profile_id"], *([i] for i in ids)]


async def test_bad_columns_are_422_naming_the_parameter(client, engine, keys):
    seed_members(engine, "few", 1)
    for params, field in (
        ({"identifiers": "Email"}, "identifiers"),
        ({"identifiers": "email,,phone"}, "identifiers"),
        ({"identifiers": "email,email"}, "identifiers"),
        ({"identifiers": "profile_id"}, "identifiers"),
        ({"identifiers": ",".join(f"t{i}" for i in range(11))}, "identifiers"),
        ({"traits": "a,"}, "traits"),
        ({"traits": "x" * 201}, "traits"),
        ({"identifiers": "email", "traits": "email"}, "traits"),
        ({"traits": "x" * 10_001}, "traits"),
    ):
        r = await client.get(
            "/api/audiences/few/export", params=params, headers=auth(keys[Role.analyst])
        )
        assert r.status_code == 422, (params, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], (params, r.json())


def test_safe_cell():
    assert [safe_cell(v) for v in ("=1", "+1", "-1", "@a", "\t", "\rx", "a=b", "")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\t",
        "'\rx",
        "a=b",
        "",
    ]
    assert safe_cell(-5) == "'-5"
    assert safe_cell(None) == ""
    assert safe_cell(False) == "false"
    assert safe_cell({"a": "=x"}) == '{"a":"=x"}'
    with pytest.raises(Unprocessable):
        parse_columns(None, "ok, ")


def count_member_pages(engine: sa.Engine) -> list[int]:
    """Counts the member page queries the engine runs (a list, so the listener can add)."""
    seen = [0]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if "FROM audience_membership" in statement:
            seen[0] += 1

    return seen


async def test_export_reads_the_members_page_by_page(app, engine, keys):
    ids = seed_members(engine, "big", 2 * PAGE_SIZE + 5)
    pages = count_member_pages(engine)
    chunks = export_csv(engine, "big", ExportColumns(identifiers=("email",)))
    header = next(chunks)
    assert header == "profile_id,email\r\n"
    assert pages[0] == 0  # nothing is read before the first page is asked for
    first = next(chunks)
    assert pages[0] == 1
    assert len(rows(first)) == PAGE_SIZE
    rest = list(chunks)
    assert pages[0] == 3
    assert [len(rows(c)) for c in rest] == [PAGE_SIZE, 5]
    assert [r[0] for c in (first, *rest) for r in rows(c)] == ids
    # the route streams the same pages: the body arrives in more than one part
    parts = await body_parts(app, "/api/audiences/big/export", auth(keys[Role.analyst]))
    assert len(parts) >= 3
    assert rows(b"".join(parts).decode())[1:] == [[i] for i in ids]


async def body_parts(app, path: str, headers: dict[str, str]) -> list[bytes]:
    """The response body's ASGI messages as the app sends them (httpx's ASGI transport would
    join them)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    parts: list[bytes] = []
    status: list[int] = []
    requested = False
    done = asyncio.Event()

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the response ends
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            if message.get("body"):
                parts.append(message["body"])
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    assert status == [200]
    return parts


def peak_of_export(engine: sa.Engine, key: str) -> tuple[int, int]:
    """(peak traced memory in bytes, rows) while exporting `key`, chunks dropped as read."""
    columns = ExportColumns(identifiers=("email", "user_id"), traits=("first_name",))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = sum(chunk.count("\r\n") for chunk in export_csv(engine, key, columns))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, count


@pytest.mark.timeout(600)
def test_export_memory_does_not_grow_with_the_members(engine):
    seed_members(engine, "small", 2_000)
    seed_members(engine, "large", 20_000, start=2_000)
    peak_of_export(engine, "small")  # warm caches (compiled statements, pools)
    small, small_rows = peak_of_export(engine, "small")
    large, large_rows = peak_of_export(engine, "large")
    assert (small_rows, large_rows) == (2_001, 20_001)
    # Ten times the members, about the same peak: one page at a time (plus the garbage of
    # earlier pages the collector has not reached yet). Reading them all at once would be
    # about ten times the peak.
    assert large < small * 2, (small, large)


def test_an_erased_member_in_a_page_does_not_end_the_export(engine):
    """A page that holds an erased member's leftover row has fewer rows than members read: the
    export goes on to the next page instead of taking the short page for the last one."""
    ids = seed_members(engine, "vip", 7)
    with Session(engine) as s:
        row = s.get(Profile, sorted(ids)[1])
        assert row is not None
        row.erased_at = dt.datetime.now(dt.UTC)
        s.add(row)
        s.commit()
    text = "".join(export_csv(engine, "vip", parse_columns(None, None), page_size=3))
    exported = [r[0] for r in rows(text)[1:]]
    assert exported == sorted(ids)[:1] + sorted(ids)[2:]
