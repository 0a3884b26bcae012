"""The Segment reader validates lines as `/v1/batch` bodies: the raw lines joined, one parse
per body no bigger than a single message may be (so split_batch reads it once), the batch's
indexes mapped back to line numbers. A body that does not read as exactly its lines (a
malformed line, a line holding two objects) is read again line by line; lines that need a
change (sentAt, no messageId, an escape) are rewritten without changing their values."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from rejse.events import ingest
from rejse.events.schemas import MAX_EVENT_BYTES
from rejse.imports import runner
from rejse.imports.runner import Summary, run_import
from rejse.models.events import Event, OutboxEntry

EVENT = Event.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]


def track(i: int, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "userId": f"u{i % 7}",
        "event": "Product Viewed",
        "messageId": f"m{i}",
        "properties": {"sku": f"SKU-{i}", "price": 99.5},
        "timestamp": "2024-03-01T10:00:00Z",
    }
    message.update(extra)
    return {k: v for k, v in message.items() if v is not None}


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def do_import(runtime, path: Path, **options: Any) -> Summary:
    return run_import(
        runtime.engine,
        path,
        fmt="segment",
        data_dir=runtime.settings.data_dir,
        database="test",
        **options,
    )


def stored_ids(runtime) -> list[str]:
    """messageIds in the order they were stored (the outbox's order)."""
    with runtime.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(EVENT.c.message_id)
                .join(OUTBOX, OUTBOX.c.event_id == EVENT.c.id)
                .order_by(OUTBOX.c.id)
            ).scalars()
        )


def problems(summary: Summary) -> list[tuple[int, str, str]]:
    return [(p.line, p.field, p.message) for p in summary.problems]


def test_clean_lines_are_validated_in_single_parse_bodies_without_parsing_each(
    runtime, tmp_path, monkeypatch
):
    lines = [orjson.dumps(track(i)) for i in range(600)]
    path = write(tmp_path / "clean.jsonl", lines)
    bodies: list[int] = []
    envelopes: list[int] = []
    parsed: list[bytes] = []
    real_split, real_envelope, real_loads = ingest.split_batch, ingest._envelope, orjson.loads

    def split_spy(body: bytes) -> ingest.ParsedBatch:
        bodies.append(len(body))
        return real_split(body)

    def envelope_spy(body: bytes, validation: dict[str, Any]) -> Any:
        envelopes.append(len(body))
        return real_envelope(body, validation)

    def loads_spy(data: Any) -> Any:
        parsed.append(bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b"")
        return real_loads(data)

    monkeypatch.setattr(runner, "split_batch", split_spy)
    monkeypatch.setattr(ingest, "_envelope", envelope_spy)
    monkeypatch.setattr(orjson, "loads", loads_spy)
    summary = do_import(runtime, path)
    assert (summary.stored, summary.bad) == (600, 0)
    # each body at most one message's limit: split_batch parses it once (no envelope pass)
    assert bodies
    assert max(bodies) <= MAX_EVENT_BYTES
    assert envelopes == []
    total = sum(len(line) + 1 for line in lines)
    assert len(bodies) <= total // (MAX_EVENT_BYTES - 512) + 1  # bodies are filled up
    assert not set(lines) & set(parsed)  # no line was parsed on its own
    assert stored_ids(runtime) == [f"m{i}" for i in range(600)]


def test_bad_lines_are_found_by_line_and_the_rest_stored_in_file_order(runtime, tmp_path):
    lines = [orjson.dumps(track(i)) for i in range(400)]
    lines[4] = b'{"type":"track","userId":"u1","event":"E"'  # cut off: the body is not JSON
    lines[150] = orjson.dumps(track(150)) + b"," + orjson.dumps(track(1150))  # two in one
    lines[151] = b'{"type":"track","userId":"u1","event":"E","messageId":"x",}'
    lines[200] = orjson.dumps(track(200, event=None))
    lines[250] = b"[1, 2]"
    lines[260] = orjson.dumps(track(260)).replace(b"99.5", b"NaN")
    lines[399] = orjson.dumps(track(399)) + b"]"  # the last line cannot close the batch
    path = write(tmp_path / "mixed.jsonl", lines)
    summary = do_import(runtime, path, batch_items=250)
    found = sorted(problems(summary))  # a batch's unreadable lines come first
    assert [(line, field) for line, field, _ in found] == [
        (5, "body"),
        (151, "body"),
        (152, "body"),
        (201, "event"),
        (251, "body"),
        (261, "properties.price"),
        (400, "body"),
    ]
    assert found[0][2].startswith("not valid JSON (")
    assert found[1][2].startswith("not valid JSON (")
    assert found[3][2] == "event is required for track"
    assert found[4][2] == "a line must be a JSON object (one message)"
    assert "NaN" in found[5][2]  # refused as /v1/batch refuses it, naming the field
    assert (summary.records, summary.stored, summary.bad) == (400, 393, 7)
    refused = {4, 150, 151, 200, 250, 260, 399}
    assert stored_ids(runtime) == [f"m{i}" for i in range(400) if i not in refused]


def test_lines_are_rewritten_only_as_needed_and_keep_their_values(runtime, tmp_path):
    big = 12345678901234567890123  # beyond 64 bits: /v1/batch refuses it, naming the field
    lines = [
        # no messageId: an id from the line's bytes (the same as earlier versions gave)
        orjson.dumps(track(0, messageId=None)),
        # only a nested messageId: still none of its own
        orjson.dumps(track(1, messageId=None, properties={"sku": "SKU-1", "messageId": "inner"})),
        orjson.dumps(track(2, messageId="")),
        orjson.dumps(track(3, messageId=None)).replace(b'"type"', b'"messageId":null,"type"'),
        orjson.dumps(track(4, sentAt="2024-03-01T10:00:05Z")),
        # an escaped key is the same key: this sentAt is dropped too
        orjson.dumps(track(5)).replace(b"}", b',"sent\\u0041t":"2024-03-01T10:00:05Z"}', 1),
        orjson.dumps(track(6, messageId=None, properties={"n": 1})).replace(b"1}", b"%d}" % big),
        orjson.dumps(track(7, sentAt="2024-03-01T10:00:05Z", properties={"n": 1})).replace(
            b"1}", b"%d}" % big
        ),
        orjson.dumps(track(8, properties={"sku": "SKU-8", "name": "Søren æ"})).replace(
            "æ".encode(), b"\\u00e6"
        ),
    ]
    path = write(tmp_path / "odd.jsonl", lines)
    summary = do_import(runtime, path)
    assert problems(summary) == [
        (7, "properties.n", "integer beyond 64 bits (send it as a string)"),
        (8, "properties.n", "integer beyond 64 bits (send it as a string)"),
    ]
    with runtime.engine.connect() as conn:
        rows = {
            r.sku: r
            for r in conn.execute(
                sa.select(
                    EVENT.c.message_id,
                    EVENT.c.timestamp,
                    EVENT.c.properties,
                    EVENT.c.properties["sku"].as_string().label("sku"),
                )
            )
        }
    content = "import-" + hashlib.sha256(lines[0]).hexdigest()[:40]
    assert rows["SKU-0"].message_id == content
    for sku in ("SKU-1", "SKU-2", "SKU-3"):
        assert rows[sku].message_id.startswith("import-")
    assert rows["SKU-4"].message_id == "m4"
    for sku in ("SKU-4", "SKU-5"):  # no clock correction from sentAt
        assert rows[sku].timestamp.isoformat().startswith("2024-03-01T10:00:00")
    assert rows["SKU-8"].properties["name"] == "Søren æ"
    assert len(rows) == 7

    again = do_import(runtime, path)  # every id is stable: nothing stored twice
    assert (again.stored, again.duplicates, again.bad) == (0, 7, 2)


def test_lines_crafted_to_leave_their_place_in_the_body_are_refused(runtime, tmp_path):
    """Joined as they are, these would parse as a batch of exactly three messages whose
    envelope sets every event's context.ip (the second line is valid JSON; the first two
    leave a string open and close the batch's list early): each is read, and refused."""
    first = (
        b'{"type":"track","userId":"a","event":"E","messageId":"m1"},'
        b'{"type":"track","userId":"u","event":"E","messageId":"mu","x":["}'
    )
    second = b'{"]},{":0,":0}],":1}'
    third = b'{":{"q":1},"context":{"ip":"203.0.113.9"},"z":[{"a":1}'
    joined = ingest.split_batch(b'{"batch":[' + b",".join([first, second, third]) + b"]}")
    assert len(joined.rows) + len(joined.errors) == 3  # what the count alone would not see
    assert joined.rows[0]["context"] == {"ip": "203.0.113.9"}
    summary = do_import(runtime, write(tmp_path / "crafted.jsonl", [first, second, third]))
    assert sorted((p.line, p.field) for p in summary.problems) == [
        (1, "body"),
        (2, "type"),
        (3, "body"),
    ]
    assert stored_ids(runtime) == []
    with runtime.engine.connect() as conn:
        contexts = conn.execute(sa.select(EVENT.c.context)).scalars().all()
    assert all("ip" not in c for c in contexts)
