"""Helpers for tests (and `bench/startup.py`) that run the `rejse` command as a real process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any REJSE_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REJSE_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def rejse_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rejse", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        rejse_command(*args),
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(p) for p in (task / "children").read_text().split()]
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class RejseUp:
    """`rejse up` on free ports with its own data folder, as a subprocess."""

    def __init__(self, workdir: Path, data_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.data_dir = data_dir or workdir / "data"
        self.api_port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.runs = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"up-{self.runs}.out"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"up-{self.runs}.err"

    def start(self, **env: str) -> None:
        self.runs += 1
        self.started_at = time.monotonic()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                rejse_command(
                    "up",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.api_port),
                    "--temporal-port",
                    str(self.temporal_port),
                    "--temporal-ui-port",
                    str(self.ui_port),
                ),
                cwd=self.workdir,
                env=clean_env(**env),
                stdout=out,
                stderr=err,
            )

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Seconds from start until `/readyz` answered 200."""
        assert self.proc is not None
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"rejse up exited with {self.proc.returncode}: {self.output()}"
                )
            try:
                if httpx.get(f"{self.api}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - self.started_at
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"/readyz not 200 within {timeout} s: {self.output()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> tuple[int, list[int]]:
        """Send `sig`; returns the exit code and the child pids that existed before."""
        assert self.proc is not None
        kids = children(self.proc.pid)
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"rejse up did not stop within {timeout} s: {self.output()}"
            ) from None
        return code, kids

    def kill(self) -> None:
        """Last resort in a test's cleanup: kill the process and its children."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in children(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()

    def output(self) -> str:
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text += path.read_text(errors="replace")[-3000:]
        return text
