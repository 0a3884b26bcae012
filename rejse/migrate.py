"""Alembic migrations, run programmatically (`rejse migrate`, tests, `rejse up`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from rejse.db import redact
from rejse.logging import get_logger
from rejse.settings import ConfigError, Settings

log = get_logger("rejse.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to every head (domains migrate as branches off the foundation)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def migrate_database(settings: Settings, engine: Engine) -> None:
    try:
        upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - report one line, keep the cause in the log
        log.exception("migration_failed")
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"database: migrating {redact(settings.effective_database_url)} failed: {first}"
        ) from None
