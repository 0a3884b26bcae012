"""`rejse backup DIR` / `rejse restore DIR` for the embedded default: rejse's SQLite database
and the embedded Temporal's `temporal.db`, copied with SQLite's online backup API while
`rejse up` runs (each copy is one consistent snapshot of its database; writers wait at most
for the copy of one page batch in rollback mode, not at all in WAL mode).

Order matters between the two files, which are snapshots of two moments: rejse's database is
copied first, Temporal's after it. So the Temporal copy is the newer one: an event that rejse's
copy still has unprocessed in the outbox is processed again after a restore, and the journey
start it dispatches finds its workflow (deterministic ids) and does nothing. The other order
could lose a run whose event rejse had already marked processed.

PostgreSQL is not copied here: use `pg_dump` (docs/operations.md, "Backup and restore")."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from rejse import __version__
from rejse.settings import ConfigError, Settings

MANIFEST = "rejse-backup.json"
REJSE_DB = "rejse.db"
TEMPORAL_DB = "temporal.db"
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Copied:
    name: str  # the file in the backup folder
    source: Path
    bytes: int
    seconds: float


def sqlite_path(settings: Settings) -> Path:
    """rejse's SQLite file, or a ConfigError naming pg_dump for any other database."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise ConfigError(
            "backup/restore copy the embedded default's SQLite files; this database is "
            f"{url.get_backend_name()}: back it up with pg_dump (docs/operations.md, "
            '"Backup and restore")'
        )
    return Path(url.database).resolve()


def temporal_path(settings: Settings) -> Path:
    return (settings.data_dir / TEMPORAL_DB).resolve()


def copy_online(source: Path, target: Path) -> Copied:
    """A consistent copy of a live SQLite database (the online backup API, all pages in one
    step, so a busy writer cannot make it start over); waits up to 30 s for a lock."""
    started = time.perf_counter()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=-1)
            # a plain rollback-journal file: the copy is one file, whatever the source used
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    return Copied(target.name, source, target.stat().st_size, time.perf_counter() - started)


def _check(path: Path) -> None:
    """The copy is a sound SQLite database (quick_check), else a ConfigError naming it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path}: not a SQLite database ({exc})") from None
    finally:
        conn.close()
    if result != "ok":
        raise ConfigError(f"{path}: damaged ({result})")


def backup(settings: Settings, folder: Path) -> list[Copied]:
    """Copy rejse's database, then Temporal's (when the embedded one has a file), into
    `folder` (new or empty), with a manifest naming what is there."""
    database = sqlite_path(settings)
    if not database.exists():
        raise ConfigError(f"no rejse database at {database} (--data-dir / REJSE_DATA_DIR)")
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"backup folder {folder} is not empty; name a new or empty one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"backup folder {folder}: {exc.strerror}") from None
    copied = [copy_online(database, folder / REJSE_DB)]
    temporal = temporal_path(settings)
    if temporal.exists():
        copied.append(copy_online(temporal, folder / TEMPORAL_DB))
    for item in copied:
        _check(folder / item.name)
    manifest = {
        "rejse_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {item.name: {"bytes": item.bytes, "source": str(item.source)} for item in copied},
        "order": [item.name for item in copied],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return copied


@dataclass(frozen=True)
class Restored:
    targets: list[Path]
    set_aside: Path | None  # where the databases that were there went


def restore(settings: Settings, folder: Path) -> Restored:
    """Put a backup's files in place of this data folder's databases. The caller holds the
    data folder's lock (no `rejse up` runs on it). What was there is moved aside, not deleted,
    into `<data dir>/before-restore-<time>/`."""
    folder = folder.resolve()
    if not (folder / MANIFEST).exists():
        raise ConfigError(f"{folder} is not a rejse backup (no {MANIFEST})")
    manifest = json.loads((folder / MANIFEST).read_text())
    names = list(manifest["files"])
    for name in names:
        if name not in (REJSE_DB, TEMPORAL_DB):
            raise ConfigError(f"{folder}/{MANIFEST}: unknown file {name!r}")
        _check(folder / name)
    targets = {REJSE_DB: sqlite_path(settings), TEMPORAL_DB: temporal_path(settings)}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = settings.data_dir.resolve() / f"before-restore-{stamp}"
    moved = False
    for name in (REJSE_DB, TEMPORAL_DB):
        target = targets[name]
        for path in (target, *(target.with_name(target.name + s) for s in _SIDE_FILES)):
            if path.exists():
                aside.mkdir(parents=True, exist_ok=True)
                shutil.move(path, aside / path.name)
                moved = True
    placed = []
    for name in names:
        target = targets[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(folder / name, partial)
        partial.replace(target)  # atomic: a crash leaves the old name or the whole copy
        placed.append(target)
    return Restored(targets=placed, set_aside=aside if moved else None)
