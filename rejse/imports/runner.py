"""Run an import: read, validate like `/v1/batch`, store in batches, checkpoint, report.

Every stored event has `source="import"` and the import's start in
`context.rejse_import.started_at`; the processor applies the ones older than the start without
dispatching them (no journeys, no lead hand-offs for the past). The checkpoint is a small JSON
file in the data folder (`<data dir>/imports/`), keyed by the file, format, options and
database; it holds the byte offset after the last stored batch and the SHA-256 of the bytes
before it, so a rerun after Ctrl-C continues there if the file's beginning is unchanged (and
starts over, storing nothing twice thanks to the messageIds, if it changed). A finished import
removes its checkpoint."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from rejse.contracts import IMPORT_CONTEXT, IMPORT_SOURCE
from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.events.ingest import InvalidEvents, ParsedBatch, accept, split_batch
from rejse.events.schemas import MAX_EVENT_BYTES
from rejse.imports.formats import (
    FORMATS,
    FormatError,
    Item,
    LineSource,
    Target,
    check_columns,
    content_id,
    csv_items,
    lacks_message_id,
    read_header,
    segment_items,
    shopify_items,
    text_lines,
)

BATCH_ITEMS = 2000  # records per transaction (and per checkpoint)
# Messages are validated in /v1/batch bodies of at most this size, as big as a /v1/batch of
# about 100 typical events: a bigger body makes split_batch read it twice (once to look for
# messages over their size limit, which cannot be here: such lines are refused when read), which
# made the import slower per event than /v1/batch itself.
ENVELOPE_BYTES = MAX_EVENT_BYTES
BODY_START, BODY_END = b'{"batch":[', b"]}"  # a body: the messages between, comma-separated
WRAPPER_BYTES = len(BODY_START) + len(BODY_END)
MAX_SHOWN_PROBLEMS = 100  # bad lines printed; the rest are counted


@dataclass
class Problem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class Summary:
    path: str
    format: str
    started_at: dt.datetime
    resumed_at_line: int = 0  # 0: from the beginning
    records: int = 0  # records read (lines, rows or orders)
    stored: int = 0  # events stored now
    duplicates: int = 0  # events whose messageId was stored before
    skipped: dict[str, int] = field(default_factory=dict)  # deliberately not imported: why
    problems: list[Problem] = field(default_factory=list)  # the first MAX_SHOWN_PROBLEMS
    bad: int = 0  # records refused
    seconds: float = 0.0
    interrupted: bool = False
    restarted: bool = False  # a checkpoint existed but the file changed: started over

    @property
    def events_per_second(self) -> float:
        return (self.stored + self.duplicates) / self.seconds if self.seconds else 0.0


class Reporter:
    """Progress callbacks (the CLI's shows a rich progress bar); the default does nothing."""

    def start(self, total_bytes: int, done_bytes: int) -> None: ...

    def advance(self, done_bytes: int, events: int) -> None: ...

    def problem(self, problem: Problem) -> None: ...

    def finish(self) -> None: ...


def checkpoint_path(
    data_dir: Path, path: Path, fmt: str, options: list[str], database: str
) -> Path:
    key = orjson.dumps([str(path.resolve()), fmt, options, database])
    return data_dir / "imports" / f"{hashlib.sha256(key).hexdigest()[:24]}.json"


def _write_checkpoint(target: Path, state: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(state))
    os.replace(temporary, target)


def _load_checkpoint(target: Path) -> dict[str, Any] | None:
    try:
        state = orjson.loads(target.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    ok = (
        isinstance(state, dict)
        and isinstance(state.get("offset"), int)
        and isinstance(state.get("line"), int)
        and isinstance(state.get("digest"), str)
        and isinstance(state.get("started_at"), str)
    )
    return state if ok else None


def _prefix_hasher(fh: Any, offset: int) -> Any:
    hasher = hashlib.sha256()
    left = offset
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            break
        hasher.update(chunk)
        left -= len(chunk)
    return hasher if left == 0 else None


def run_import(
    engine: Engine,
    path: Path,
    *,
    fmt: str,
    data_dir: Path,
    database: str,
    mapping: list[tuple[str, Target]] | None = None,
    constants: list[tuple[Target, str]] | None = None,
    options: list[str] | None = None,
    reporter: Reporter | None = None,
    batch_items: int = BATCH_ITEMS,
    after_batch: Callable[[Summary], None] | None = None,
) -> Summary:
    """Import `path`; raises FormatError when it cannot start. `after_batch` runs after each
    stored batch and its checkpoint (a KeyboardInterrupt from it, or from Ctrl-C, ends the
    import with the checkpoint kept and `interrupted` set)."""
    if fmt not in FORMATS:
        raise FormatError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "csv" and not mapping:
        raise FormatError("--map: a CSV import needs a column map (e.g. Email=traits.email)")
    reporter = reporter or Reporter()
    target = checkpoint_path(data_dir, path, fmt, options or [], database)
    total = path.stat().st_size
    with path.open("rb") as fh:
        state = _load_checkpoint(target)
        offset = line = 0
        hasher = None
        started_at = utcnow()
        restarted = False
        if state is not None:
            hasher = _prefix_hasher(fh, state["offset"])
            if hasher is not None and hasher.hexdigest() == state["digest"]:
                offset, line = state["offset"], state["line"]
                started_at = dt.datetime.fromisoformat(state["started_at"])
            else:
                hasher, restarted = None, True
                fh.seek(0)
        summary = Summary(
            path=str(path),
            format=fmt,
            started_at=started_at,
            resumed_at_line=line + 1 if offset else 0,
            restarted=restarted,
        )
        header: list[str] = []
        if fmt != "segment":
            header = read_header(fh)
            if fmt == "csv":
                check_columns(header, mapping or [])
        fh.seek(offset)
        source = LineSource(fh, offset=offset, line=line, hasher=hasher)
        items = _items(source, fmt, header, mapping or [], constants or [], skip_header=not offset)
        marker = {IMPORT_CONTEXT: {"started_at": started_at.isoformat()}}
        began = time.monotonic()
        reporter.start(total, offset)
        try:
            for batch in _batches(items, batch_items):
                _store(engine, batch, summary, marker, reporter)
                last = batch[-1]
                _write_checkpoint(
                    target,
                    {
                        "path": str(path),
                        "format": fmt,
                        "offset": last.resume,
                        "line": last.resume_line,
                        "digest": source.digest(last.resume),
                        "started_at": started_at.isoformat(),
                    },
                )
                summary.seconds = time.monotonic() - began
                reporter.advance(last.resume, summary.stored + summary.duplicates)
                if after_batch is not None:
                    after_batch(summary)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.seconds = time.monotonic() - began
            reporter.finish()
    if not summary.interrupted:
        target.unlink(missing_ok=True)
    return summary


def _items(
    source: LineSource,
    fmt: str,
    header: list[str],
    mapping: list[tuple[str, Target]],
    constants: list[tuple[Target, str]],
    *,
    skip_header: bool,
) -> Iterator[Item]:
    if fmt == "segment":
        return segment_items(source)
    if skip_header:  # the header's lines are part of what the checkpoint covers
        next(csv.reader(text_lines(source)), None)
    if fmt == "csv":
        return csv_items(source, header, mapping, constants)
    return shopify_items(source, header)


def _batches(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _store(
    engine: Engine,
    batch: list[Item],
    summary: Summary,
    marker: dict[str, Any],
    reporter: Reporter,
) -> None:
    rows: list[dict[str, Any]] = []
    buckets: list[int] = []
    messages: list[Item] = []
    for item in batch:
        summary.records += 1
        if item.error is not None:
            _problem(summary, reporter, Problem(item.line, item.field or "body", item.error))
        elif item.skipped is not None:
            summary.skipped[item.skipped] = summary.skipped.get(item.skipped, 0) + 1
        elif item.message is not None or item.encoded is not None:
            messages.append(item)
        for row, bucket in item.rows:
            rows.append(row)
            buckets.append(bucket)
    for group in _envelopes(messages):
        _validate(group, rows, buckets, summary, reporter)
    for row in rows:
        row["source"] = IMPORT_SOURCE
        row["context"] = {**(row["context"] or {}), **marker}
    if rows:
        accepted, duplicates = accept(engine, rows, buckets, source=IMPORT_SOURCE)
        summary.stored += accepted
        summary.duplicates += duplicates


def _envelopes(messages: list[Item]) -> Iterator[list[tuple[Item, bytes]]]:
    """Messages grouped into `/v1/batch` bodies of at most ENVELOPE_BYTES (a message that is
    bigger on its own gets a body of its own)."""
    group: list[tuple[Item, bytes]] = []
    size = WRAPPER_BYTES - 1  # the first message needs no comma
    for item in messages:
        encoded = item.encoded if item.encoded is not None else orjson.dumps(item.message)
        if group and size + len(encoded) + 1 > ENVELOPE_BYTES:
            yield group
            group, size = [], WRAPPER_BYTES - 1
        group.append((item, encoded))
        size += len(encoded) + 1
    if group:
        yield group


def _validate(
    group: list[tuple[Item, bytes]],
    rows: list[dict[str, Any]],
    buckets: list[int],
    summary: Summary,
    reporter: Reporter,
    *,
    checked: bool = False,
) -> None:
    """Validate a group of messages as one `/v1/batch` body (one parse for all of them) and
    map the batch's indexes back to line numbers. When the body as a whole does not read as a
    batch of exactly these messages (a malformed line breaks the JSON, or a line such as
    `{...},{...}` would count twice), the lines are read one by one to find the bad ones; the
    others are validated again as one body (`checked`), in file order."""
    body = BODY_START + b",".join(encoded for _, encoded in group) + BODY_END
    parsed = ParsedBatch()
    failure: DomainError | None = None
    try:
        parsed = split_batch(body)
    except InvalidEvents as exc:  # no message is good (or the envelope is wrong)
        parsed.errors = exc.errors
        failure = exc
    except DomainError as exc:  # not JSON as a whole
        failure = exc
    refused_at = {e.get("index") for e in parsed.errors}
    fits = (
        (failure is None or isinstance(failure, InvalidEvents))
        and all(isinstance(i, int) and 0 <= i < len(group) for i in refused_at)
        and len(parsed.rows) + len(refused_at) == len(group)
    )
    if not fits:
        if len(group) == 1:
            item, encoded = group[0]
            _problem(summary, reporter, Problem(item.line, "body", _unreadable(encoded, failure)))
        elif checked:
            for one in group:
                _validate([one], rows, buckets, summary, reporter)
        else:
            run: list[tuple[Item, bytes]] = []
            for one in group:
                try:
                    orjson.loads(one[1])
                except orjson.JSONDecodeError:
                    if run:
                        _validate(run, rows, buckets, summary, reporter, checked=True)
                        run = []
                    _validate([one], rows, buckets, summary, reporter)
                else:
                    run.append(one)
            if run:
                _validate(run, rows, buckets, summary, reporter, checked=True)
        return
    good = (index for index in range(len(group)) if index not in refused_at)
    for index, row in zip(good, parsed.rows, strict=True):
        encoded = group[index][1]
        if row["message_id"].startswith("srv-") and lacks_message_id(encoded):
            row["message_id"] = content_id("import", encoded)
    rows.extend(parsed.rows)
    buckets.extend(parsed.buckets)
    refused: set[int] = set()
    for error in parsed.errors:
        index = error["index"]
        prefix = f"batch.{index}"
        name = str(error.get("field") or "")
        name = name[len(prefix) + 1 :] if name.startswith(prefix + ".") else "body"
        line = group[index][0].line
        # a record counts once as bad; each of its problems is listed
        _problem(summary, reporter, Problem(line, name, str(error["message"])), index in refused)
        refused.add(index)


def _unreadable(encoded: bytes, failure: DomainError | None) -> str:
    try:
        orjson.loads(encoded)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})"
    return failure.message if failure is not None else "not a valid message"


def _problem(summary: Summary, reporter: Reporter, problem: Problem, seen: bool = False) -> None:
    if not seen:
        summary.bad += 1
    if len(summary.problems) < MAX_SHOWN_PROBLEMS:
        summary.problems.append(problem)
        reporter.problem(problem)
