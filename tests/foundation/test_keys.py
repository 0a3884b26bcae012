"""API keys from the command line and the start-up rule for admin access."""

from __future__ import annotations

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from rejse.cli import app
from rejse.keys import ensure_admin_access
from rejse.models.auth import ApiKey
from rejse.roles import Role, hash_key


@pytest.fixture
def cli(db_url, engine, monkeypatch):
    monkeypatch.setenv("REJSE_DATABASE_URL", db_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_keys_create_list_revoke(cli, runtime):
    created = cli("keys", "create", "--role", "ingest", "--name", "webshop")
    assert created.exit_code == 0, created.output
    raw = created.stdout.strip().splitlines()[-1]
    assert raw.startswith("rjk_")
    key_id, role = runtime.keys.resolve(raw)
    assert role is Role.ingest

    listed = cli("keys", "list")
    assert key_id in listed.stdout
    assert "webshop" in listed.stdout
    assert raw not in listed.stdout
    assert raw.split("_", 2)[2] not in listed.stdout

    assert cli("keys", "revoke", key_id).exit_code == 0
    runtime.keys.forget()
    assert runtime.keys.resolve(raw) is None
    assert cli("keys", "revoke", "nosuchid").exit_code == 1


def test_keys_create_refuses_an_unknown_role(cli):
    with pytest.raises(Exception, match="--role"):
        cli("keys", "create", "--role", "superuser")


def test_first_start_creates_one_admin_key_and_shows_it_once(session):
    raw = ensure_admin_access(session, bootstrap_key=None)
    session.commit()
    assert raw is not None
    assert raw.startswith("rjk_")
    assert ensure_admin_access(session, bootstrap_key=None) is None  # not again
    admins = session.exec(select(ApiKey).where(ApiKey.role == "admin")).all()
    assert [a.key_hash for a in admins] == [hash_key(raw)]  # only the hash is stored


def test_bootstrap_admin_key_exists_after_start_and_is_reactivated(session, runtime):
    bootstrap = "my-bootstrap-admin-key-of-some-length"
    assert ensure_admin_access(session, bootstrap_key=bootstrap) is None  # no extra key
    session.commit()
    assert runtime.keys.resolve(bootstrap)[1] is Role.admin
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(bootstrap))).one()
    row.revoked_at = row.created_at
    row.role = "analyst"
    session.add(row)
    session.commit()
    ensure_admin_access(session, bootstrap_key=bootstrap)
    session.commit()
    runtime.keys.forget()
    assert runtime.keys.resolve(bootstrap)[1] is Role.admin
