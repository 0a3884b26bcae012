"""A full disk under `rejse up`: its data folder (rejse's SQLite database and Temporal's) on a
small filesystem of its own, filled while events arrive. Ingestion answers a clear 503 naming
the full disk (nothing half-stored), the process keeps running, the databases stay intact
(`PRAGMA integrity_check`), and once there is room again everything accepted is processed.

The small filesystem is a 64 MB tmpfs mounted by the test (root may mount here); where mounting
is not permitted the drill is skipped and says so."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from rejse.db import make_engine
from rejse.keys import create_key
from rejse.roles import Role
from tests.foundation.procs import RejseUp
from tests.reliability.stack import INGEST_KEY, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.timeout(300)]


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def track(i: int, pad: int) -> dict:
    return {
        "type": "track",
        "messageId": f"disk-{i}",
        "userId": f"cust-{i % 50}",
        "event": "Product Viewed",
        "properties": {"sku": f"sku-{i}", "note": "x" * pad},
    }


def post(up: RejseUp, events: list[dict]) -> httpx.Response:
    return httpx.post(
        f"{up.api}/v1/batch",
        json={"batch": events},
        headers={"Authorization": f"Bearer {INGEST_KEY}"},
        timeout=30,
    )


def integrity(path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_full_disk_on_the_data_folder(tmp_path, small_disk):
    data = small_disk / "data"
    up = RejseUp(tmp_path, data_dir=data)
    up.start(REJSE_LOG_LEVEL="WARNING")
    try:
        up.wait_ready(timeout=90)
        engine = make_engine(f"sqlite:///{data / 'rejse.db'}")
        with Session(engine) as s:
            create_key(s, name="disk drill", role=Role.ingest, raw_key=INGEST_KEY)
            s.commit()
        time.sleep(6)  # the API's key cache
        assert post(up, [track(i, 100) for i in range(20)]).status_code == 200
        # fill the disk, leaving a little room, then send until it is full
        stat = os.statvfs(small_disk)
        filler = small_disk / "filler"
        with open(filler, "wb") as out:
            out.write(b"\0" * max(stat.f_bavail * stat.f_frsize - 2_000_000, 0))
        accepted, refused, i = 20, None, 20
        while refused is None and i < 20_000:
            r = post(up, [track(i + k, 4000) for k in range(50)])
            if r.status_code == 200:
                accepted += 50
            else:
                refused = r
            i += 50
        assert refused is not None, "the disk never filled"
        assert refused.status_code == 503, (refused.status_code, refused.text)
        assert "disk is full" in refused.json()["detail"]
        assert refused.headers["Retry-After"]
        assert up.proc is not None
        assert up.proc.poll() is None, up.output()  # still running
        # room again: the same request is accepted, nothing accepted is lost
        filler.unlink()
        wait_until(lambda: post(up, [track(90_000, 10)]).status_code == 200, 30, "accepted again")
        accepted += 1

        def processed() -> bool:
            with engine.connect() as conn:
                left = conn.execute(
                    sa.text("SELECT count(*) FROM event WHERE processed_at IS NULL")
                ).scalar_one()
                total = conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one()
            return left == 0 and total == accepted

        wait_until(processed, 120, f"{accepted} events stored and processed")
        engine.dispose()
        assert integrity(data / "rejse.db") == "ok"
    finally:
        up.stop()
        with contextlib.suppress(Exception):
            up.kill()
    assert integrity(data / "rejse.db") == "ok"
    assert integrity(data / "temporal.db") == "ok"
