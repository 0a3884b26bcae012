"""Database engines and sessions: SQLite (WAL, foreign keys) by default, PostgreSQL via
psycopg 3."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from rejse.settings import ConfigError, Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def id_chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    """`ids` in slices for `IN (...)` lists of a bounded length (a statement's parameters are
    limited, and long lists plan badly)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use psycopg 3 for them."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "database: malformed URL in REJSE_DATABASE_URL (expected e.g. "
            "postgresql://user:password@host:5432/db or sqlite:///path/to/file.db)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"database: unsupported backend {parsed.drivername!r} (use sqlite or postgresql)"
        )
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """`hide_parameters`: database errors (which end up in logs) never carry the statement's
    values, which may be emails or names."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(
            dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry
        ) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": 10},
    )


def check_database(engine: Engine) -> None:
    """Raise `ConfigError` with one line when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "unreachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        url = redact(str(engine.url.render_as_string(hide_password=False)))
        raise ConfigError(f"database: cannot connect to {url}: {first}") from None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def open_database(settings: Settings) -> Engine:
    """An engine that answers (one-line `ConfigError` otherwise)."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    check_database(engine)
    return engine


# ---------------------------------------------------------------- driver-level SQL helpers
# The hot paths (ingestion, the processor, merges) speak the driver's SQL directly; these
# write values the way the SQLAlchemy column types would.


def insert_ignore(conn: Connection, table: sa.Table) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the connection's dialect."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {dialect}")


@functools.lru_cache(maxsize=4096)
def sqlite_time(value: dt.datetime) -> str:
    # The storage format of SQLAlchemy's SQLite DATETIME (naive UTC, see rejse.db.UTCDateTime).
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def from_sqlite_time(value: str) -> dt.datetime:
    """A `UTCDateTime` as SQLite stores it (`sqlite_time`), read at the driver's level: aware
    UTC. Raises ValueError (TypeError for a non-string) when it is not one."""
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def driver_value(conn: Connection, value: dt.datetime) -> Any:
    """A UTC datetime as the driver expects it for a `UTCDateTime` column."""
    return sqlite_time(value) if conn.dialect.name == "sqlite" else value


def driver_mark(conn: Connection) -> str:
    return "?" if conn.dialect.name == "sqlite" else "%s"
