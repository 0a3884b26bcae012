"""The built-in development secret is loud: `rejse up`, `rejse api` and `rejse worker` print a
multi-line warning on stderr and log `default_secret_in_use` when they start with it, and
production refuses to start with it at all (the real `rejse` command in subprocesses)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.foundation.procs import clean_env, free_port, rejse_command, run_cli

WARNING_LINES = [
    "WARNING: REJSE_SECRET_KEY is the built-in development default.",
    "anyone can forge this installation's unsubscribe,",
    "export REJSE_SECRET_KEY=$(openssl rand -hex 32)",
]
SECRET = "9f" * 32


def events(stderr: str) -> list[str]:
    """The `event` of every JSON log line on stderr."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line).get("event"))
    return out


def assert_warned(stderr: str) -> None:
    for line in WARNING_LINES:
        assert line in stderr, stderr
    assert "default_secret_in_use" in events(stderr), stderr


def test_worker_warns_at_start_with_the_default_secret(tmp_path: Path):
    # no Temporal there: the worker ends with its one-line error, after the warning
    done = run_cli(
        "worker",
        cwd=tmp_path,
        REJSE_DATA_DIR=str(tmp_path / "data"),
        REJSE_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    assert done.returncode == 2, done.stderr
    assert_warned(done.stderr)
    assert done.stderr.index("WARNING") < done.stderr.index("rejse: error: temporal")


def test_up_warns_before_its_checks(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = run_cli(
            "up",
            "--port",
            str(busy.getsockname()[1]),
            "--data-dir",
            str(tmp_path / "data"),
            cwd=tmp_path,
        )
    assert done.returncode == 2, done.stderr
    assert_warned(done.stderr)


def test_api_warns_and_serves(tmp_path: Path):
    port = free_port()
    err = tmp_path / "api.err"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(
            rejse_command("api", "--port", str(port)),
            cwd=tmp_path,
            env=clean_env(REJSE_DATA_DIR=str(tmp_path / "data")),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert_warned(err.read_text())


def test_no_warning_with_a_real_secret(tmp_path: Path):
    done = run_cli(
        "worker",
        cwd=tmp_path,
        REJSE_DATA_DIR=str(tmp_path / "data"),
        REJSE_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        REJSE_SECRET_KEY=SECRET,
    )
    assert done.returncode == 2, done.stderr
    assert "WARNING" not in done.stderr
    assert "default_secret_in_use" not in events(done.stderr)


@pytest.mark.parametrize("command", ["api", "worker"])
def test_production_refuses_the_default_secret(tmp_path: Path, command: str):
    done = run_cli(
        command,
        cwd=tmp_path,
        REJSE_ENVIRONMENT="production",
        REJSE_DATABASE_URL="postgresql://x@127.0.0.1:1/db",
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("rejse: error: configuration: REJSE_SECRET_KEY")
    assert "production" in line
