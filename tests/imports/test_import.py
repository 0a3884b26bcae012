"""`rejse import` end to end: a file written in tmp_path, the CLI run through typer's CliRunner
(or the runner it calls), the events stored through the /v1/batch path and applied by the real
processor."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from rejse import wiring
from rejse.cli import app
from rejse.db import redact
from rejse.imports.formats import FormatError
from rejse.imports.runner import Summary, run_import
from rejse.models.events import Event
from rejse.models.profiles import Consent, Profile
from rejse.profiles.service import find_by_identifier

EVENT = Event.__table__  # type: ignore[attr-defined]


def cli(runtime, *args: str) -> Any:
    result = CliRunner().invoke(
        app,
        [
            "import",
            *args,
            "--database-url",
            runtime.settings.database_url,
            "--data-dir",
            str(runtime.settings.data_dir),
        ],
    )
    return result


def lines(path: Path, *messages: Any) -> Path:
    path.write_bytes(
        b"\n".join(m if isinstance(m, bytes) else orjson.dumps(m) for m in messages) + b"\n"
    )
    return path


def stored(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(EVENT)).scalar_one()


def profile_of(runtime, type_: str, value: str) -> Profile:
    with Session(runtime.engine) as s:
        pid = find_by_identifier(s, type=type_, value=value)
        assert pid is not None
        row = s.get(Profile, pid)
        assert row is not None
        return row


def segment_file(tmp_path: Path) -> Path:
    return lines(
        tmp_path / "history.jsonl",
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "ida@example.com", "first_name": "Ida"},
            "timestamp": "2023-01-01T10:00:00Z",
            "messageId": "m-1",
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"order_id": "o1", "revenue": 100, "currency": "DKK"},
            "timestamp": "2023-02-01T10:00:00Z",
            # an archive's sentAt: no clock correction on import (the time stays 2023)
            "sentAt": "2023-02-01T10:00:05Z",
        },
        b"{not json",
        {"type": "track", "userId": "u1", "properties": {}},
        [1, 2],
        {"type": "page", "anonymousId": "a-9", "name": "Home", "timestamp": "2023-03-01T00:00:00Z"},
    )


async def test_segment_lines_import_and_build_the_profile(runtime, tmp_path):
    path = segment_file(tmp_path)
    result = cli(runtime, str(path))
    assert result.exit_code == 1, result.output  # some lines were refused
    assert "line 3: body: not valid JSON" in result.output
    assert "line 4: event: event is required for track" in result.output
    assert "line 5: body: a line must be a JSON object" in result.output
    assert "6 records read: 3 events stored, 0 already stored, 3 refused" in result.output
    assert stored(runtime) == 3
    with runtime.engine.connect() as conn:
        row = conn.execute(
            sa.select(EVENT.c.timestamp, EVENT.c.source, EVENT.c.context).where(
                EVENT.c.event == "Order Completed"
            )
        ).one()
    assert row.timestamp == dt.datetime(2023, 2, 1, 10, tzinfo=dt.UTC)
    assert row.source == "import"
    assert "started_at" in row.context["rejse_import"]
    await wiring.event_processor(runtime).drain()
    p = profile_of(runtime, "email", "ida@example.com")
    assert (p.traits["first_name"], p.order_count, p.revenue, p.currency) == ("Ida", 1, 100, "DKK")
    assert p.first_seen_at == dt.datetime(2023, 1, 1, 10, tzinfo=dt.UTC)


async def test_a_second_import_of_the_same_file_stores_nothing(runtime, tmp_path):
    path = segment_file(tmp_path)
    cli(runtime, str(path))
    result = cli(runtime, str(path), "--format", "segment")
    assert "3 events stored" not in result.output
    assert "0 events stored, 3 already stored, 3 refused" in result.output
    assert stored(runtime) == 3


def test_csv_with_a_column_map(runtime, tmp_path):
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Email", "Order", "Total", "Currency", "Date", "Note"])
        w.writerow(["a@example.com", "1", "99.50", "DKK", "2023-05-01 10:00:00 +0200", "x"])
        w.writerow(["b@example.com", "2", "ten", "DKK", "2023-05-02T10:00:00Z", "multi\nline"])
        w.writerow(["c@example.com", "3", "12", "DKK", "yesterday", ""])
        w.writerow(["a@example.com", "4", "0.50", "", "2023-06-01T00:00:00", ""])
    result = cli(
        runtime,
        str(path),
        "--set",
        "event=Order Completed",
        "--map",
        "Email=userId,Email=traits.email,Order=properties.order_id",
        "--map",
        "Total=properties.revenue:number,Currency=properties.currency,Date=timestamp",
    )
    assert "line 3: properties.revenue: not a number (column 'Total')" in result.output
    assert "line 5: timestamp: not a time" in result.output  # line 3's cell spans two lines
    assert "4 records read: 2 events stored, 0 already stored, 2 refused" in result.output
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.select(EVENT.c.user_id, EVENT.c.properties, EVENT.c.timestamp).order_by(
                EVENT.c.timestamp
            )
        ).all()
    assert [(r.user_id, r.properties, r.timestamp) for r in rows] == [
        (
            "a@example.com",
            {"order_id": "1", "revenue": 99.5, "currency": "DKK"},
            dt.datetime(2023, 5, 1, 8, tzinfo=dt.UTC),
        ),
        (
            "a@example.com",
            {"order_id": "4", "revenue": 0.5},
            dt.datetime(2023, 6, 1, tzinfo=dt.UTC),
        ),
    ]
    again = cli(
        runtime,
        str(path),
        "--set",
        "event=Order Completed",
        "--map",
        "Email=userId,Email=traits.email,Order=properties.order_id",
        "--map",
        "Total=properties.revenue:number,Currency=properties.currency,Date=timestamp",
    )
    assert "0 events stored, 2 already stored" in again.output


def test_csv_map_errors_name_the_option(runtime, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Email,Total\na@example.com,1\n")
    result = cli(runtime, str(path), "--map", "Emial=traits.email")
    assert isinstance(result.exception, Exception)
    assert "no column 'Emial'" in str(result.exception)
    result = cli(runtime, str(path), "--map", "Email=trait.email")
    assert "'trait.email' is not a field" in str(result.exception)
    result = cli(runtime, str(path), "--map", "Total=properties.total:money")
    assert "the type must be one of" in str(result.exception)
    assert stored(runtime) == 0


SHOPIFY_HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Accepts Marketing", "Currency", "Subtotal",
    "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Created at",
    "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Billing Name",
    "Cancelled at", "Refunded Amount", "Id", "Phone",
]  # fmt: skip


def shopify_row(**cells: str) -> list[str]:
    return [cells.get(column.replace(" ", "_").lower(), "") for column in SHOPIFY_HEADER]


def shopify_file(tmp_path: Path) -> Path:
    path = tmp_path / "orders_export.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # Shopify writes a BOM
        w = csv.writer(fh)
        w.writerow(SHOPIFY_HEADER)
        common = {"currency": "DKK", "accepts_marketing": "yes"}
        w.writerow(shopify_row(
            name="#1001", email="ida@example.com", financial_status="paid",
            paid_at="2023-01-05 10:00:00 +0100", total="300.00", subtotal="280.00",
            created_at="2023-01-05 09:59:00 +0100", lineitem_quantity="1",
            lineitem_name="Kjole", lineitem_price="200.00", lineitem_sku="K1",
            billing_name="Ida Jensen", id="5001", **common,
        ))  # fmt: skip
        w.writerow(shopify_row(
            name="#1001", lineitem_quantity="2", lineitem_name="Sokker", lineitem_price="40.00"
        ))  # fmt: skip
        w.writerow(shopify_row(
            name="#1002", email="ida@example.com", financial_status="partially_refunded",
            paid_at="2023-02-01 10:00:00 +0100", total="100.00",
            created_at="2023-02-01 10:00:00 +0100", refunded_amount="40.00",
            lineitem_quantity="1", lineitem_name="Hat", id="5002", **common,
        ))  # fmt: skip
        w.writerow(shopify_row(
            name="#1003", email="bo@example.com", financial_status="voided", total="50.00",
            created_at="2023-03-01 10:00:00 +0100", id="5003", **common,
        ))  # fmt: skip
        w.writerow(shopify_row(
            name="#1004", financial_status="paid", total="70.00", paid_at="2023-03-02 10:00:00",
            created_at="2023-03-02 10:00:00 +0100", id="5004", currency="DKK",
        ))  # fmt: skip
        w.writerow(shopify_row(
            name="#1005", email="bo@example.com", financial_status="paid", total="10",
            paid_at="2023-03-03 10:00:00", created_at="someday", id="5005", currency="DKK",
        ))  # fmt: skip
    return path


async def test_shopify_orders_export(runtime, tmp_path):
    path = shopify_file(tmp_path)
    result = cli(runtime, str(path))  # a .csv without --map is a Shopify export
    assert "line 7: Created at: not a time" in result.output
    assert "5 records read: 5 events stored" in result.output
    assert "skipped 1 (financial status voided), 1 (no email or phone)" in result.output
    await wiring.event_processor(runtime).drain()
    p = profile_of(runtime, "email", "ida@example.com")
    assert (p.order_count, p.revenue, p.currency, p.traits.get("name")) == (
        2,
        360.0,
        "DKK",
        "Ida Jensen",
    )
    assert p.first_order_at == dt.datetime(2023, 1, 5, 8, 59, tzinfo=dt.UTC)
    with runtime.engine.connect() as conn:
        props = conn.execute(
            sa.select(EVENT.c.properties).where(
                EVENT.c.message_id == "shopify-order:5001:completed"
            )
        ).scalar_one()
    assert props["order_id"] == "5001"
    assert props["products"] == [
        {"name": "Kjole", "sku": "K1", "price": 200.0, "quantity": 1},
        {"name": "Sokker", "price": 40.0, "quantity": 2},
    ]
    with Session(runtime.engine) as s:
        consent = s.get(Consent, (p.id, "email"))
        assert consent is not None
        assert consent.status == "granted"
    again = cli(runtime, str(path), "--format", "shopify-orders")
    assert "0 events stored, 5 already stored" in again.output


def test_resume_after_an_interrupted_import(runtime, tmp_path):
    path = lines(
        tmp_path / "many.jsonl",
        *[
            {"type": "track", "userId": f"u{i}", "event": "Page Viewed", "messageId": f"m{i}"}
            for i in range(10)
        ],
    )
    calls: list[Summary] = []

    def interrupt(summary: Summary) -> None:
        calls.append(summary)
        if len(calls) == 2:
            raise KeyboardInterrupt

    options: dict[str, Any] = {
        "fmt": "segment",
        "data_dir": runtime.settings.data_dir,
        "database": "test",
    }
    first = run_import(runtime.engine, path, batch_items=3, after_batch=interrupt, **options)
    assert first.interrupted
    assert (first.records, first.stored) == (6, 6)
    second = run_import(runtime.engine, path, batch_items=3, **options)
    assert not second.interrupted
    assert second.resumed_at_line == 7
    assert (second.records, second.stored, second.duplicates) == (4, 4, 0)
    assert stored(runtime) == 10
    # finished: the checkpoint is gone, a new run reads the whole file (and stores nothing)
    third = run_import(runtime.engine, path, batch_items=3, **options)
    assert (third.resumed_at_line, third.records, third.stored) == (0, 10, 0)


def test_resume_through_the_cli_and_a_changed_file_starts_over(runtime, tmp_path):
    path = lines(
        tmp_path / "h.jsonl",
        *[
            {"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"n{i}"}
            for i in range(4)
        ],
    )
    options: dict[str, Any] = {
        "fmt": "segment",
        "data_dir": runtime.settings.data_dir,
        "database": redact(runtime.settings.database_url),
    }

    def stop(summary: Summary) -> None:
        raise KeyboardInterrupt

    run_import(runtime.engine, path, batch_items=2, after_batch=stop, **options)
    result = cli(runtime, str(path))
    assert result.exit_code == 0, result.output
    assert "resumed at line 3" in result.output
    assert "2 records read: 2 events stored" in result.output

    run_import(runtime.engine, path, batch_items=2, after_batch=stop, **options)
    path.write_bytes(path.read_bytes().replace(b'"n0"', b'"x0"'))  # the first line changed
    summary = run_import(runtime.engine, path, batch_items=2, **options)
    assert summary.restarted
    assert (summary.resumed_at_line, summary.records, summary.stored) == (0, 4, 1)


def test_unknown_format(runtime, tmp_path):
    path = lines(tmp_path / "x.jsonl", {"type": "track"})
    with pytest.raises(FormatError, match="--format"):
        run_import(runtime.engine, path, fmt="xml", data_dir=tmp_path, database="x")
