"""The file formats `rejse import` reads. Each reader walks a `LineSource` and yields `Item`s:
a Segment message (validated later like `/v1/batch`), ready event rows (the Shopify mapping,
like the Shopify webhook's), or a bad record (line number, field, what is wrong: never the
value, which may be personal data)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from rejse.events.schemas import MAX_EVENT_BYTES
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.events.values import might_be_unstorable
from rejse.profiles.consent import SHOPIFY_CHECKOUT

FORMATS = ("segment", "csv", "shopify-orders")


class FormatError(ValueError):
    """The file or the options cannot be read at all (a bad map, a missing column): the import
    does not start. The message names the option or column."""


@dataclass
class Item:
    line: int  # first line of the record (1-based)
    resume: int  # byte offset to read on from after this record
    resume_line: int  # lines before `resume`
    message: dict[str, Any] | None = None  # a message to validate (CSV)
    encoded: bytes | None = None  # a message to validate as JSON (a Segment line)
    rows: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # ready rows
    field: str | None = None  # a bad record: the field and the problem
    error: str | None = None
    skipped: str | None = None  # a record deliberately not imported: why (counted)


class LineSource:
    """A binary file read line by line from `offset`, counting bytes and lines. `digest(upto)`
    is the SHA-256 of the file's bytes before `upto` (the checkpoint's guard that the file
    did not change), fed as lines are read, so the file is read once."""

    def __init__(self, fh: IO[bytes], *, offset: int = 0, line: int = 0, hasher: Any = None):
        self.fh = fh
        self.offset = offset
        self.line = line
        self.hasher = hasher or hashlib.sha256()
        self.hashed = offset
        self._pending: list[tuple[int, bytes]] = []  # (end offset, bytes) not yet hashed

    def __iter__(self) -> Iterator[bytes]:
        for raw in self.fh:
            self.offset += len(raw)
            self.line += 1
            self._pending.append((self.offset, raw))
            yield raw

    def digest(self, upto: int) -> str:
        keep = 0
        for end, raw in self._pending:
            if end > upto:
                break
            self.hasher.update(raw)
            self.hashed = end
            keep += 1
        del self._pending[:keep]
        return str(self.hasher.hexdigest())


def content_id(prefix: str, data: bytes) -> str:
    """A messageId for a record that has none: the same record imports once."""
    return f"{prefix}-{hashlib.sha256(data).hexdigest()[:40]}"


# ------------------------------------------------------------------------------------ Segment


# A message id that is anything but a non-empty string or null: the reader gives such a line
# (`""`, `0`, `false`, ...) an id from its content, so it is parsed and rewritten like a line
# with `sentAt`. The pattern also matches a nested `messageId` (harmless: that line is only
# rewritten without need).
_ODD_MESSAGE_ID = re.compile(rb'"messageId"\s*:\s*(?!"[^"]|null)')


def _needs_rewrite(text: bytes) -> bool:
    """Whether a line must be parsed and written again before it goes into a batch body: not
    shaped as one object (then it is reported), a `sentAt` (dropped), a `\\u` escape (it could
    spell either key; only a parse can tell) or an odd messageId. Byte searches, no parse."""
    return (
        text[:1] != b"{"
        or text[-1:] != b"}"
        or b"sentAt" in text
        or b"\\u" in text
        or (b"messageId" in text and _ODD_MESSAGE_ID.search(text) is not None)
    )


def _joins_as_is(text: bytes) -> bool:
    """Whether a line can go into a batch body unread: no `]`, no backslash, an even number
    of quotes. Whatever else is wrong with such a line, the parser leaves it outside any string
    (each quote toggles) and it cannot end the batch's list (no `]`); a line that was read is
    one JSON value, read the same anywhere. So a body of such lines fails to parse, or holds
    one message per line, or more messages than lines (a line `{...},{...}`), which
    `runner._validate` counts; no line can reach the body's envelope (`context`, `sentAt`)."""
    return b"]" not in text and b"\\" not in text and text.count(b'"') % 2 == 0


def _parse(text: bytes) -> Any:
    """orjson, or the standard library when orjson would refuse or change a value the
    validation reads (NaN, a 100-digit integer, which `/v1/batch` refuses naming the field)."""
    return json.loads(text) if might_be_unstorable(text) else orjson.loads(text)


def _not_json(exc: ValueError) -> str:
    return f"not valid JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else 'not UTF-8'})"


def segment_items(source: LineSource) -> Iterator[Item]:
    """One Segment message per line (`type` given, as in a `/v1/batch`). `sentAt` is dropped:
    clock-skew correction is for live delivery, an archive's `timestamp` is already the
    event's time. A line without `messageId` gets one from its content (`lacks_message_id`,
    once the batch is validated).

    Most lines are not parsed here: their bytes go as they are into a `/v1/batch` body, parsed
    once for all of them (`_joins_as_is`). Any other line is parsed first: to check it is one
    JSON value, or, when `_needs_rewrite` names it, to fix it and write it again."""
    for raw in source:
        line, resume = source.line, source.offset
        text = raw.strip()
        if line == 1 and text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        if not text:
            continue
        item = Item(line=line, resume=resume, resume_line=line)
        if len(text) > MAX_EVENT_BYTES:
            item.field, item.error = "body", f"event is larger than {MAX_EVENT_BYTES // 1024} KB"
        elif _needs_rewrite(text):
            _rewrite(item, text)
        elif _joins_as_is(text):
            item.encoded = text
        else:
            try:
                _parse(text)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                item.field, item.error = "body", _not_json(exc)
            else:
                item.encoded = text
        yield item


def _rewrite(item: Item, text: bytes) -> None:
    try:
        message = _parse(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        item.field, item.error = "body", _not_json(exc)
        return
    if not isinstance(message, dict):
        item.field, item.error = "body", "a line must be a JSON object (one message)"
        return
    message.pop("sentAt", None)
    if not message.get("messageId"):
        message["messageId"] = content_id("import", text)
    # the standard library writes what it read back unchanged (orjson could not)
    item.encoded = (
        json.dumps(message).encode() if might_be_unstorable(text) else orjson.dumps(message)
    )


def lacks_message_id(encoded: bytes) -> bool:
    """Whether a message (as validated) has no messageId of its own, i.e. the id `/v1/batch`
    gave it is a server one and the import gives it one from its content instead."""
    if b"messageId" not in encoded and b"\\u" not in encoded:
        return True
    try:
        message = _parse(encoded)
    except ValueError:  # cannot be: the validation read it
        return True
    return not (isinstance(message, dict) and message.get("messageId"))


# ------------------------------------------------------------------------------------ CSV


def text_lines(source: LineSource) -> Iterator[str]:
    for raw in source:
        text = raw.decode("utf-8", errors="replace")
        if source.line == 1:
            text = text.removeprefix("\ufeff")
        yield text


def read_header(fh: IO[bytes]) -> list[str]:
    """The first CSV record of the file (its column names)."""
    fh.seek(0)
    source = LineSource(fh)
    reader = csv.reader(text_lines(source))
    header = next(reader, None)
    if not header:
        raise FormatError("the file has no header line")
    return [h.strip() for h in header]


def _records(
    source: LineSource, header: list[str]
) -> Iterator[tuple[int, int, int, dict[str, str]]]:
    """(first line, resume offset, resume line, row) per CSV record after the header. The
    csv reader pulls exactly the lines of one record, so the source's offset after a record
    is where the next one starts."""
    reader = csv.reader(text_lines(source))
    while True:
        start = source.line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FormatError(f"line {start}: not readable as CSV ({exc})") from None
        if not any(c.strip() for c in cells):
            continue
        yield start, source.offset, source.line, dict(zip(header, cells, strict=False))


# Targets of a column: message fields, or a dotted path under traits/properties/context.
TOP_FIELDS = (
    "type",
    "event",
    "userId",
    "anonymousId",
    "messageId",
    "timestamp",
    "groupId",
    "previousId",
    "name",
    "category",
)
NESTED = ("traits", "properties", "context")
KINDS = ("string", "number", "integer", "boolean", "json")


@dataclass(frozen=True)
class Target:
    path: tuple[str, ...]  # ("userId",) or ("properties", "order_id")
    kind: str = "string"

    @property
    def name(self) -> str:
        return ".".join(self.path)


def parse_target(text: str, *, option: str) -> Target:
    target, _, kind = text.strip().partition(":")
    kind = kind.strip() or "string"
    if kind not in KINDS:
        raise FormatError(f"{option}: {text!r}: the type must be one of {', '.join(KINDS)}")
    parts = tuple(p.strip() for p in target.split("."))
    if not all(parts) or not (
        (len(parts) == 1 and parts[0] in TOP_FIELDS) or (len(parts) > 1 and parts[0] in NESTED)
    ):
        raise FormatError(
            f"{option}: {target!r} is not a field: use one of {', '.join(TOP_FIELDS)} or "
            "traits.<name>, properties.<name>, context.<name>"
        )
    if parts == ("timestamp",) and kind != "string":
        raise FormatError(f"{option}: timestamp takes no type")
    return Target(parts, kind)


def parse_map(entries: list[str]) -> list[tuple[str, Target]]:
    """`--map "Email=traits.email,Total=properties.revenue:number"` (comma-separated, the
    option may be repeated) -> [(column, target)]."""
    out: list[tuple[str, Target]] = []
    for entry in entries:
        for part in entry.split(","):
            if not part.strip():
                continue
            column, sep, target = part.partition("=")
            if not sep or not column.strip():
                raise FormatError(f"--map: {part.strip()!r} is not column=field")
            out.append((column.strip(), parse_target(target, option="--map")))
    return out


def parse_constants(entries: list[str]) -> list[tuple[Target, str]]:
    """`--set "event=Order Completed" --set properties.currency=DKK` -> [(target, value)]."""
    out = []
    for entry in entries:
        target, sep, value = entry.partition("=")
        if not sep:
            raise FormatError(f"--set: {entry!r} is not field=value")
        out.append((parse_target(target, option="--set"), value))
    return out


def _convert(value: str, kind: str) -> Any:
    """The cell as its type; ValueError names what it should have been."""
    if kind == "string":
        return value
    if kind in ("number", "integer"):
        text = value.strip().replace(" ", "")
        try:
            number = int(text) if kind == "integer" else float(text)
        except ValueError:
            raise ValueError(f"not {'an integer' if kind == 'integer' else 'a number'}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("not a finite number")
        if isinstance(number, int) and not -(2**63) <= number < 2**63:
            raise ValueError("an integer beyond 64 bits")
        return number
    if kind == "boolean":
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "y"):
            return True
        if lowered in ("false", "no", "0", "n"):
            return False
        raise ValueError("not a boolean (true/false, yes/no, 1/0)")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ValueError("not valid JSON") from None


def parse_time(value: str) -> dt.datetime:
    """ISO 8601 or Shopify's `2024-01-31 12:34:56 +0100`; a time without offset is UTC."""
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            raise ValueError("not a time (ISO 8601, e.g. 2024-01-31T12:00:00+01:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _put(message: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = message
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def csv_items(
    source: LineSource,
    header: list[str],
    mapping: list[tuple[str, Target]],
    constants: list[tuple[Target, str]],
) -> Iterator[Item]:
    """One Segment message per CSV row, built from the column map and the constants. Empty
    cells are left out. Without a `type`, a row with an `event` is a track, else an identify."""
    for line, resume, resume_line, row in _records(source, header):
        item = Item(line=line, resume=resume, resume_line=resume_line)
        message: dict[str, Any] = {}
        for target, value in constants:
            _put(message, target.path, value)
        for column, target in mapping:
            cell = row.get(column)
            if cell is None or not cell.strip():
                continue
            try:
                if target.path == ("timestamp",):
                    value = parse_time(cell).isoformat()
                else:
                    value = _convert(cell, target.kind)
            except ValueError as exc:
                item.field, item.error = target.name, f"{exc} (column {column!r})"
                break
            _put(message, target.path, value)
        if item.error is None:
            message.setdefault("type", "track" if message.get("event") else "identify")
            if not message.get("messageId"):
                message["messageId"] = content_id(
                    "import-csv", orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
                )
            item.message = message
        yield item


def check_columns(header: list[str], mapping: list[tuple[str, Target]]) -> None:
    missing = [column for column, _ in mapping if column not in header]
    if missing:
        shown = ", ".join(repr(c) for c in header[:30])
        raise FormatError(f"--map: no column {missing[0]!r} in the header (columns: {shown})")


# ------------------------------------------------------------------------------------ Shopify

# The Shopify admin's orders export: one line per line item; the first line of an order carries
# the order's fields, the following ones only `Name` and the `Lineitem ...` columns.
SHOPIFY_REQUIRED = ("Name", "Email", "Financial Status", "Currency", "Total", "Created at")
NOT_COMPLETED = frozenset({"pending", "authorized", "voided", "expired"})


def _money(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value.strip().replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _cell(row: dict[str, str], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def shopify_items(source: LineSource, header: list[str]) -> Iterator[Item]:
    missing = [c for c in SHOPIFY_REQUIRED if c not in header]
    if missing:
        raise FormatError(
            f"not a Shopify orders export: no column {missing[0]!r} (expected "
            f"{', '.join(SHOPIFY_REQUIRED)}, ...)"
        )
    order: list[dict[str, str]] = []
    first_line = 0
    resume = resume_line = 0
    for line, end, end_line, row in _records(source, header):
        name = _cell(row, "Name")
        if order and name == _cell(order[0], "Name"):
            order.append(row)
            resume, resume_line = end, end_line
            continue
        if order:
            yield _shopify_order(order, first_line, resume, resume_line)
        order, first_line, resume, resume_line = [row], line, end, end_line
    if order:
        yield _shopify_order(order, first_line, resume, resume_line)


def _shopify_order(lines: list[dict[str, str]], line: int, resume: int, resume_line: int) -> Item:
    item = Item(line=line, resume=resume, resume_line=resume_line)
    head = lines[0]
    if any("\x00" in v for r in lines for v in r.values() if v):
        item.field, item.error = "body", "a cell holds a NUL character"
        return item
    name = _cell(head, "Name")
    if name is None:
        item.field, item.error = "Name", "the order has no name"
        return item
    email, phone = _cell(head, "Email"), _cell(head, "Phone") or _cell(head, "Billing Phone")
    if email is None and phone is None:
        item.skipped = "no email or phone"
        return item
    status = (_cell(head, "Financial Status") or "").lower()
    if status in NOT_COMPLETED and _cell(head, "Paid at") is None:
        item.skipped = f"financial status {status}"
        return item
    try:
        created = parse_time(_cell(head, "Created at") or "")
    except ValueError as exc:
        item.field, item.error = "Created at", str(exc)
        return item
    order_id = (_cell(head, "Id") or name)[:200]
    traits = {k: v for k, v in {"email": email, "phone": phone}.items() if v}
    context: dict[str, Any] = {
        "traits": traits,
        "integration": {"name": "shopify", "source": "orders export"},
    }
    key = (email or phone or "").lower()
    received = dt.datetime.now(dt.UTC)
    currency = _cell(head, "Currency")
    total = _money(_cell(head, "Total"))
    products = []
    for r in lines:
        product = {
            "name": _cell(r, "Lineitem name"),
            "sku": _cell(r, "Lineitem sku"),
            "price": _money(_cell(r, "Lineitem price")),
            "quantity": _int(_cell(r, "Lineitem quantity")),
        }
        product = {k: v for k, v in product.items() if v is not None}
        if product:
            products.append(product)
    properties = {
        "order_id": order_id,
        "order_number": name,
        "total": total,
        "revenue": total,
        "value": total,
        "subtotal": _money(_cell(head, "Subtotal")),
        "shipping": _money(_cell(head, "Shipping")),
        "tax": _money(_cell(head, "Taxes")),
        "discount": _money(_cell(head, "Discount Amount")),
        "coupon": _cell(head, "Discount Code"),
        "currency": currency,
        "financial_status": status or None,
        "products": products,
    }
    ids = f"shopify-order:{order_id}"
    rows = []
    identify_traits = dict(traits)
    if billing := _cell(head, "Billing Name"):
        identify_traits["name"] = billing[:255]
    identify_context = dict(context)
    accepts = (_cell(head, "Accepts Marketing") or "").lower()
    if accepts in ("yes", "no"):
        identify_context["consent"] = {"email": accepts == "yes", "source": SHOPIFY_CHECKOUT}
    rows.append(
        event_row(
            type="identify",
            message_id=f"{ids}:identify",
            timestamp=created,
            received_at=received,
            traits=identify_traits,
            context=identify_context,
        )
    )
    rows.append(
        event_row(
            type="track",
            event="Order Completed",
            message_id=f"{ids}:completed",
            timestamp=created,
            received_at=received,
            properties={k: v for k, v in properties.items() if v is not None},
            context=context,
        )
    )
    refunded = _money(_cell(head, "Refunded Amount"))
    if refunded:
        # The export has no refund time: the cancellation's, else the order's.
        try:
            at = parse_time(_cell(head, "Cancelled at") or "")
        except ValueError:
            at = created
        rows.append(
            event_row(
                type="track",
                event="Order Refunded",
                message_id=f"{ids}:refunded",
                timestamp=max(at, created),
                received_at=received,
                properties={
                    k: v
                    for k, v in {
                        "order_id": order_id,
                        "total": refunded,
                        "revenue": refunded,
                        "value": refunded,
                        "currency": currency,
                    }.items()
                    if v is not None
                },
                context=context,
            )
        )
    item.rows = [(row, bucket_for(key)) for row in rows]
    return item


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
