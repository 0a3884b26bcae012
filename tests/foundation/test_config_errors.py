"""Bad configuration ends with one clear line on stderr and a non-zero exit, no traceback
(the real `rejse` command in subprocesses, started side by side to keep this quick)."""

from __future__ import annotations

import fcntl
import socket
import subprocess
from pathlib import Path

import pytest

from tests.foundation.procs import clean_env, free_port, rejse_command


def up_args(**ports: int) -> list[str]:
    def port(name: str) -> str:
        return str(ports.get(name) or free_port())

    return [
        "up",
        "--port",
        port("api"),
        "--temporal-port",
        port("temporal"),
        "--temporal-ui-port",
        port("ui"),
    ]


def _busy_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# case id -> (arguments, environment, what the one line must say)
def cases(busy: dict[str, int]) -> dict[str, tuple[list[str], dict[str, str], list[str]]]:
    return {
        "unreachable-db": (
            up_args(),
            {"REJSE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nope"},
            ["database: cannot connect", "127.0.0.1"],
        ),
        "malformed-url": (
            up_args(),
            {"REJSE_DATABASE_URL": "::not a url::"},
            ["database: malformed URL", "REJSE_DATABASE_URL"],
        ),
        "unsupported-backend": (
            up_args(),
            {"REJSE_DATABASE_URL": "mysql://x@localhost/db"},
            ["unsupported backend"],
        ),
        "production-default-secret": (
            up_args(),
            {"REJSE_ENVIRONMENT": "production", "REJSE_DATABASE_URL": "postgresql://x@h/db"},
            ["REJSE_SECRET_KEY", "production"],
        ),
        "port-not-a-number": (["up"], {"REJSE_API_PORT": "eighty"}, ["REJSE_API_PORT"]),
        "api-port-in-use": (
            up_args(api=busy["api"]),
            {},
            [f"port {busy['api']}", "already in use", "(API;", "--port"],
        ),
        "temporal-port-in-use": (
            up_args(temporal=busy["temporal"]),
            {},
            [f"port {busy['temporal']}", "already in use", "(Temporal;", "--temporal-port"],
        ),
        "ui-port-in-use": (
            up_args(ui=busy["ui"]),
            {},
            [f"port {busy['ui']}", "already in use", "(Temporal Web UI;", "--temporal-ui-port"],
        ),
        "data-dir-in-use": (
            up_args() + ["--data-dir", busy["data_dir"]],
            {},
            ["is in use by another `rejse up`", "--data-dir"],
        ),
        "split-worker-without-temporal": (
            ["worker"],
            {"REJSE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"},
            ["temporal: cannot connect", "REJSE_TEMPORAL_ADDRESS"],
        ),
    }


CASE_IDS = list(cases({"api": 1, "temporal": 2, "ui": 3, "data_dir": "x"}))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path, list[str]]]:
    sockets = {name: _busy_socket() for name in ("api", "temporal", "ui")}
    busy: dict = {name: sock.getsockname()[1] for name, sock in sockets.items()}
    # A data folder locked as a running `rejse up` would hold it.
    data_dir = tmp_path_factory.mktemp("in-use")
    held = open(data_dir / "up.lock", "a+")  # noqa: SIM115
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    busy["data_dir"] = str(data_dir)
    try:
        running = {}
        for case, (args, env, needles) in cases(busy).items():
            cwd = tmp_path_factory.mktemp(case)
            # a real secret, so the only line is the error (the default secret's warning is
            # tested in test_default_secret.py); the production case keeps the default
            secret = {} if "REJSE_ENVIRONMENT" in env else {"REJSE_SECRET_KEY": "c0ffee" * 8}
            proc = subprocess.Popen(
                rejse_command(*args),
                cwd=cwd,
                env=clean_env(**secret, **env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            running[case] = (proc, cwd, needles, args)
        out = {}
        for case, (proc, cwd, needles, args) in running.items():
            stdout, stderr = proc.communicate(timeout=90)
            out[case] = (
                subprocess.CompletedProcess(args, proc.returncode, stdout, stderr),
                cwd,
                needles,
            )
        return out
    finally:
        for sock in sockets.values():
            sock.close()
        held.close()


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_configuration_is_one_clear_line(results, case):
    result, cwd, needles = results[case]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rejse: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (cwd / ".rejse" / "temporal.db").exists()  # nothing was started
