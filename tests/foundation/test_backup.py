"""`rejse backup` / `rejse restore` (rejse.backup): a backup taken while `rejse up` runs, with a
journey run waiting on a timer, restored into a new data folder; the restored instance
continues the waiting run to its end. Both databases are real (rejse's SQLite and the
embedded Temporal dev server's temporal.db)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from rejse.backup import MANIFEST
from tests.foundation.procs import RejseUp, run_cli

pytestmark = pytest.mark.e2e

ADMIN_KEY = "rjk_0badc0de_" + "b" * 43
WAIT = 20  # seconds: the backup is taken well inside it (asserted below)

JOURNEY: dict[str, Any] = {
    "key": "backup-drill",
    "name": "Waits, then marks the profile",
    "trigger": {"type": "event", "event": "Backup Drill"},
    "start": "wait",
    "steps": {
        "wait": {"type": "wait", "for": f"PT{WAIT}S", "next": "mark"},
        "mark": {"type": "update_profile", "traits": {"restored": "yes"}},
    },
}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# generous: on a loaded CI machine a first request to a fresh `rejse up` has taken seconds
HTTP = httpx.Client(timeout=30)


def until(what: str, probe: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_of(api: str, user_id: str) -> dict[str, Any] | None:
    r = HTTP.get(f"{api}/api/profiles/lookup", params={"user_id": user_id}, headers=ADMIN)
    if r.status_code == 404:
        return None
    pid = r.json()["id"]
    runs = HTTP.get(
        f"{api}/api/journeys/backup-drill/runs", params={"profile_id": pid}, headers=ADMIN
    ).json()
    return runs[0] if runs and runs[0]["current_step"] else None


def profile(api: str, user_id: str) -> dict[str, Any]:
    r = HTTP.get(f"{api}/api/profiles/lookup", params={"user_id": user_id}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def instances(tmp_path: Path):
    made: list[RejseUp] = []

    def make(name: str) -> RejseUp:
        workdir = tmp_path / name
        workdir.mkdir()
        made.append(RejseUp(workdir))
        return made[-1]

    yield make
    for up in made:
        up.kill()


def test_backup_while_running_then_restore_continues_a_waiting_journey(tmp_path, instances):
    env = {"REJSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
    first = instances("first")
    first.start(**env)
    first.wait_ready(timeout=90)
    r = HTTP.post(f"{first.api}/api/journeys", json=JOURNEY, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = HTTP.post(f"{first.api}/api/journeys/backup-drill/publish", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    event = {"userId": "drill-1", "event": "Backup Drill", "messageId": "drill-1"}
    r = HTTP.post(f"{first.api}/v1/track", json=event, headers=ADMIN)
    assert r.status_code == 200, r.text
    run = until("the run at its wait", lambda: run_of(first.api, "drill-1"))
    assert (run["status"], run["current_step"]) == ("running", "wait"), run

    # the backup, while the instance runs and the run waits on its timer
    folder = tmp_path / "backup"
    made = run_cli("backup", str(folder), "--data-dir", str(first.data_dir), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["order"] == ["rejse.db", "temporal.db"]  # rejse's first (rejse.backup)
    for name in manifest["order"]:
        with sqlite3.connect(folder / name) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with sqlite3.connect(folder / "rejse.db") as conn:  # the copy holds the run still waiting
        assert conn.execute("SELECT status, current_step FROM journey_run").fetchall() == [
            ("running", "wait")
        ]
    assert first.stop()[0] == 0

    # restore into a new data folder, and start there: the run finishes its wait
    second = instances("second")
    restored = run_cli("restore", str(folder), "--data-dir", str(second.data_dir), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    second.start(**env)
    second.wait_ready(timeout=90)
    done = until(
        "the restored run to finish",
        lambda: (run := run_of(second.api, "drill-1")) and run["status"] == "completed" and run,
        timeout=WAIT + 90,
    )
    assert done["status"] == "completed", done
    assert profile(second.api, "drill-1")["traits"]["restored"] == "yes"
    # the restored instance takes new events too
    r = HTTP.post(f"{second.api}/v1/track", json={**event, "messageId": "drill-2"}, headers=ADMIN)
    assert r.status_code == 200, r.text

    # restoring over a running instance's folder is refused, and nothing is touched
    busy = run_cli("restore", str(folder), "--data-dir", str(second.data_dir), cwd=tmp_path)
    assert busy.returncode == 2
    assert "in use by another `rejse up`" in busy.stderr
    assert second.stop()[0] == 0


def test_backup_refuses_postgresql_and_a_used_folder(tmp_path):
    r = run_cli(
        "backup",
        str(tmp_path / "b"),
        cwd=tmp_path,
        REJSE_DATABASE_URL="postgresql://rejse@127.0.0.1:5432/rejse",
    )
    assert r.returncode == 2
    assert "pg_dump" in r.stderr
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    migrated = run_cli("migrate", cwd=tmp_path, REJSE_DATA_DIR=str(tmp_path / "d"))
    assert migrated.returncode == 0, migrated.stderr
    r = run_cli("backup", str(tmp_path / "used"), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 2
    assert "not empty" in r.stderr
    r = run_cli("restore", str(tmp_path / "used"), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 2
    assert "is not a rejse backup" in r.stderr


def test_restore_sets_the_old_databases_aside(tmp_path):
    data = tmp_path / "d"
    assert run_cli("migrate", cwd=tmp_path, REJSE_DATA_DIR=str(data)).returncode == 0
    r = run_cli("backup", str(tmp_path / "b"), "--data-dir", str(data), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "b" / MANIFEST).read_text())["order"] == ["rejse.db"]
    r = run_cli("restore", str(tmp_path / "b"), "--data-dir", str(data), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (aside,) = data.glob("before-restore-*")
    assert (aside / "rejse.db").exists()
    assert (data / "rejse.db").exists()
