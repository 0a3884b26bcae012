"""Per-caller rate limits: fixed windows counted by the `limits` package, in a store every API
process shares.

- Redis (`REJSE_REDIS_URL`): `limits`' own Redis storage, keys under `REJSE_REDIS_KEY_PREFIX`.
- PostgreSQL (the database is PostgreSQL and no Redis is set): `PostgresStorage` below, one
  row per caller and scope in `rate_limit_window`, counted with one upsert per request.
- Otherwise (SQLite: one process) `limits`' in-process memory.

A caller is an API key id (`/v1` ingestion and the `/api` control plane have a limit each) or
a webhook source (`shopify:<shop>`, `generic:<name>`). A refused request is told when its
window ends (`Retry-After`). Nothing refused was accepted, so a client that retries after
`Retry-After` loses nothing. When the store cannot be reached the request is let through and a
warning logged: a rate limit must not take ingestion down with it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.engine import Engine

from rejse.logging import get_logger
from rejse.settings import Settings

log = get_logger("rejse.ratelimits")

Scope = Literal["ingest", "control"]

_WARN_EVERY = 60.0  # seconds between two "store unreachable" warnings


class PostgresStorage(Storage):
    """`limits` storage on the `rate_limit_window` table: a window's count and end in one row,
    reset in place by the upsert that finds it expired (one statement, one round trip)."""

    STORAGE_SCHEME = ["rejse+postgresql"]

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(uri=None, wrap_exceptions=False)
        self._engine = engine
        self._clock = clock

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._clock()
        with self._engine.begin() as conn:
            hits = conn.execute(
                sa.text(
                    "INSERT INTO rate_limit_window (key, hits, expires_at) "
                    "VALUES (:key, :amount, :now + :expiry) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "hits = CASE WHEN rate_limit_window.expires_at <= :now THEN :amount "
                    "ELSE rate_limit_window.hits + :amount END, "
                    "expires_at = CASE WHEN rate_limit_window.expires_at <= :now "
                    "THEN :now + :expiry ELSE rate_limit_window.expires_at END "
                    "RETURNING hits"
                ),
                {"key": key, "amount": amount, "now": now, "expiry": float(expiry)},
            ).scalar_one()
        return int(hits)

    def _row(self, key: str) -> tuple[int, float] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT hits, expires_at FROM rate_limit_window WHERE key = :key"),
                {"key": key},
            ).first()
        if row is None or row[1] <= self._clock():
            return None
        return int(row[0]), float(row[1])

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else self._clock()

    def check(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self._engine.begin() as conn:
            return conn.execute(sa.text("DELETE FROM rate_limit_window")).rowcount

    def clear(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rate_limit_window WHERE key = :key"), {"key": key})


@dataclass(frozen=True)
class Refusal:
    """A refused request: the limit it is over and the seconds until its window ends."""

    limit: str
    retry_after: int


class RateLimiter:
    """`hit(scope, caller)` counts one request and returns None, or a `Refusal` when the caller
    is over its scope's limit. `blocking` says whether a hit waits on the network (Redis,
    PostgreSQL): the API then runs it on a worker thread."""

    def __init__(
        self, storage: Storage, limits: dict[Scope, RateLimitItem | None], *, backend: str
    ) -> None:
        self.storage = storage
        self.backend = backend
        self.limits = limits
        self.blocking = not isinstance(storage, MemoryStorage)
        self._strategy = FixedWindowRateLimiter(storage)
        self._warned_at = -math.inf

    def hit(self, scope: Scope, caller: str) -> Refusal | None:
        item = self.limits.get(scope)
        if item is None:
            return None
        try:
            if self._strategy.hit(item, scope, caller):
                return None
            reset_at, _ = self._strategy.get_window_stats(item, scope, caller)
        except Exception as exc:  # noqa: BLE001 - an unreachable store lets requests through
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                log.warning(
                    "rate_limit_store_unreachable", backend=self.backend, error=type(exc).__name__
                )
            return None
        return Refusal(limit=str(item), retry_after=max(1, math.ceil(reset_at - time.time())))


def _item(text: str) -> RateLimitItem | None:
    return None if text == "off" else parse(text)


def build_rate_limiter(settings: Settings, engine: Engine, **options: Any) -> RateLimiter:
    """The limiter for this process: Redis when configured, else PostgreSQL when the database
    is PostgreSQL, else process memory."""
    storage: Storage
    if settings.redis_url:
        storage = RedisStorage(
            settings.redis_url, key_prefix=f"{settings.redis_key_prefix}:ratelimit", **options
        )
        backend = "redis"
    elif engine.dialect.name == "postgresql":
        storage = PostgresStorage(engine)
        backend = "postgresql"
    else:
        storage = MemoryStorage()
        backend = "memory"
    limits: dict[Scope, RateLimitItem | None] = {
        "ingest": _item(settings.rate_limit_ingest),
        "control": _item(settings.rate_limit_control),
    }
    return RateLimiter(storage, limits, backend=backend)
