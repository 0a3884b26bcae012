"""Process orchestration: `rejse up` runs everything (embedded Temporal dev server, worker with
its background services, scheduler, API) in one asyncio process; `rejse api|worker|scheduler`
run one part each against an external Temporal (`REJSE_TEMPORAL_ADDRESS`).

SIGINT / SIGTERM set one stop event: the API stops accepting, the scheduler and the worker
stop, and the Temporal child process is terminated last. A part that dies on its own stops the
rest and the process exits non-zero, so a supervisor restarts it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, TypeVar

from rejse.db import open_database
from rejse.devserver import DevServer
from rejse.logging import get_logger
from rejse.settings import DEFAULT_SECRET, ConfigError, Settings

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI
    from sqlalchemy.engine import Engine

# Heavy imports (uvicorn, the app, models, Alembic, the Temporal SDK) happen inside the
# functions, after the embedded Temporal server has been started: it boots meanwhile.

log = get_logger("rejse.up")

T = TypeVar("T")


@dataclass(frozen=True)
class Parts:
    api: bool = False
    worker: bool = False  # the Temporal worker, with the background services unless told not
    scheduler: bool = False
    embedded_temporal: bool = False  # `rejse up` only
    processor: bool = False  # `rejse processor`: the background services without the worker
    worker_services: bool = True  # False: `rejse worker --no-processor`

    @classmethod
    def everything(cls) -> Parts:
        return cls(api=True, worker=True, scheduler=True, embedded_temporal=True)


@dataclass(frozen=True)
class Started:
    """What `serve` reports once it is up (the CLI prints it)."""

    api_url: str | None
    temporal_address: str
    temporal_ui_url: str | None
    new_admin_key: str | None


# ----------------------------------------------------------------------------- checks


def _port_in_use(what: str, host: str, port: int, hint: str) -> ConfigError:
    return ConfigError(
        f"port {port} on {host} is already in use ({what}; choose another with {hint})"
    )


def bind_api_socket(settings: Settings) -> socket.socket:
    """Bind the API port now (uvicorn serves on this socket), so a busy port is a clear error
    before anything starts."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            settings.api_host, settings.api_port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror:
        raise ConfigError(
            f"api: cannot resolve host {settings.api_host!r} (REJSE_API_HOST)"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise _port_in_use(
                "API", settings.api_host, settings.api_port, "--port / REJSE_API_PORT"
            ) from None
        raise ConfigError(
            f"api: cannot bind {settings.api_host}:{settings.api_port}: {exc.strerror}"
        ) from None
    sock.set_inheritable(False)
    return sock


def check_port_free(host: str, port: int, *, what: str, hint: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((socket.gethostbyname(host), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _port_in_use(what, host, port, hint) from None
            raise ConfigError(f"{what}: cannot bind {host}:{port}: {exc.strerror}") from None


def lock_data_dir(settings: Settings) -> IO[str]:
    """One `rejse up` per data folder (two Temporal servers on one SQLite file would corrupt
    it). Returns the open lock file; the lock lasts until it is closed or the process ends."""
    import fcntl

    data_dir = settings.data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(data_dir / "up.lock", "a+")  # noqa: SIM115 - held while running
    except OSError as exc:
        raise ConfigError(
            f"data folder {data_dir} is not writable: {exc.strerror} (--data-dir / REJSE_DATA_DIR)"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"data folder {data_dir} is in use by another `rejse up`; stop it or "
            "choose another with --data-dir / REJSE_DATA_DIR"
        ) from None
    return handle


def prepare_database(settings: Settings, engine: Engine, *, migrate: bool) -> str | None:
    """Migrate (if asked) and apply the admin-key start-up rule. `rejse up` guarantees a usable
    admin key and returns a newly created one (shown once); split processes only honour
    REJSE_BOOTSTRAP_ADMIN_KEY."""
    from sqlmodel import Session

    from rejse.keys import ensure_admin_access, ensure_bootstrap_key
    from rejse.migrate import migrate_database

    if migrate:
        migrate_database(settings, engine)
    with Session(engine) as session:
        new_key = None
        if migrate:
            new_key = ensure_admin_access(session, bootstrap_key=settings.bootstrap_admin_key)
        elif settings.bootstrap_admin_key:
            ensure_bootstrap_key(session, raw_key=settings.bootstrap_admin_key)
        session.commit()
    if migrate:
        log.info("database_ready", migrated=True)
    return new_key


def default_secret_warning(settings: Settings, parts: Parts) -> str | None:
    """The warning for a process that signs with the built-in secret (the API verifies
    tracking links, the worker signs them and webhooks), else None. Production never gets
    here: its settings refuse the default secret."""
    if settings.secret_key != DEFAULT_SECRET or not (parts.api or parts.worker):
        return None
    return (
        "WARNING: REJSE_SECRET_KEY is the built-in development default.\n"
        "  It is in rejse's source code, so anyone can forge this installation's unsubscribe,\n"
        "  preference and tracking links and the signatures of its outgoing webhooks.\n"
        "  Set a random secret of at least 32 characters before anyone else can reach it:\n"
        "    export REJSE_SECRET_KEY=$(openssl rand -hex 32)\n"
        "  With REJSE_ENVIRONMENT=production rejse refuses to start without one."
    )


# ----------------------------------------------------------------------------- running


def _api_server(app: FastAPI) -> uvicorn.Server:
    """uvicorn without its own signal handling: rejse's stop event decides."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app, log_config=None, access_log=False, server_header=False, lifespan="auto"
    )
    return Server(config)


async def _until(awaitable: Awaitable[T], stop: asyncio.Event) -> T | None:
    """Await `awaitable` unless `stop` is set first (then return None)."""
    task = asyncio.ensure_future(awaitable)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return None


def _preload(parts: Parts) -> None:
    """Import what the parts need (a second or more of Python) while Temporal boots."""
    if parts.api:
        import api.app  # noqa: F401
    if parts.worker:
        import rejse.worker  # noqa: F401
        from rejse import wiring

        wiring.workflows()


def display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison, not a bind


async def serve(
    settings: Settings,
    parts: Parts,
    *,
    on_started: Callable[[Started], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run `parts` until SIGINT/SIGTERM (or `stop` is set). Returns the exit code. Every
    configuration problem (ports, database) is found before anything starts; the embedded
    Temporal server then boots while the database is migrated. What is started is stopped in
    reverse order, whatever happens (one exit stack)."""
    stop = stop or asyncio.Event()
    if default_secret_warning(settings, parts) is not None:
        log.warning(
            "default_secret_in_use",
            environment=settings.environment,
            hint="set REJSE_SECRET_KEY to a random value of at least 32 characters",
        )
    ran = _Ran()
    try:
        return await _serve(settings, parts, stop, on_started, ran)
    finally:
        if ran.started:
            log.info("rejse_stopped", code=ran.code)


@dataclass
class _Ran:
    started: bool = False
    code: int = 0


async def _serve(
    settings: Settings,
    parts: Parts,
    stop: asyncio.Event,
    on_started: Callable[[Started], None] | None,
    ran: _Ran,
) -> int:
    async with contextlib.AsyncExitStack() as stack:
        if parts.embedded_temporal:
            stack.callback(lock_data_dir(settings).close)
        api_sock = bind_api_socket(settings) if parts.api else None
        if api_sock is not None:
            stack.callback(api_sock.close)
        if parts.embedded_temporal:
            settings = settings.model_copy(update={"temporal_address": None})
            check_port_free(
                settings.temporal_host,
                settings.temporal_port,
                what="Temporal",
                hint="--temporal-port / REJSE_TEMPORAL_PORT",
            )
            check_port_free(
                settings.temporal_host,
                settings.temporal_ui_port,
                what="Temporal Web UI",
                hint="--temporal-ui-port / REJSE_TEMPORAL_UI_PORT",
            )
        engine = open_database(settings)
        stack.callback(engine.dispose)
        ran.code = await _run_parts(stack, settings, parts, engine, api_sock, stop, on_started, ran)
        return ran.code
    raise AssertionError("unreachable: the exit stack does not swallow exceptions")


async def _run_parts(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    parts: Parts,
    engine: Engine,
    api_sock: socket.socket | None,
    stop: asyncio.Event,
    on_started: Callable[[Started], None] | None,
    ran: _Ran,
) -> int:
    from rejse import wiring

    devserver: DevServer | None = None

    def on_signal() -> None:
        """The first Ctrl-C stops cleanly; a second one while stopping exits at once."""
        if not stop.is_set():
            stop.set()
            return
        log.warning("forced_exit")
        if devserver is not None and devserver.process.returncode is None:
            devserver.process.kill()
        os._exit(130)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
        stack.callback(loop.remove_signal_handler, sig)

    client = None
    if parts.embedded_temporal:
        devserver = await DevServer.start(settings)
        stack.push_async_callback(devserver.stop)
    tasks: dict[str, asyncio.Task[object]] = {}
    if devserver is not None:
        tasks["temporal"] = asyncio.create_task(devserver.process.wait())
    database = asyncio.create_task(
        asyncio.to_thread(prepare_database, settings, engine, migrate=parts.embedded_temporal)
    )
    waiting = asyncio.create_task(
        _until(devserver.wait_ready(), stop) if devserver else asyncio.sleep(0)
    )
    preload = asyncio.create_task(asyncio.to_thread(_preload, parts))
    try:
        client, new_admin_key, _ = await asyncio.gather(waiting, database, preload)
    except BaseException:
        waiting.cancel()
        raise
    if stop.is_set():
        return 0
    from rejse.runtime import Runtime
    from rejse.temporal import ensure_search_attributes

    runtime = Runtime.create(settings, engine=engine, temporal_client=client)
    if parts.worker and client is None:
        try:
            await ensure_search_attributes(await runtime.temporal.client())
        except Exception:  # noqa: BLE001
            raise ConfigError(
                f"temporal: cannot connect to {settings.effective_temporal_address} "
                f"(REJSE_TEMPORAL_ADDRESS)"
            ) from None

    if settings.metrics_port is not None and not parts.api:
        stack.callback(_serve_metrics(settings))
    server: uvicorn.Server | None = None
    # Registered before any part starts, so it runs before the dev server is stopped.
    stack.push_async_callback(_stop_parts, tasks, stop, lambda: server)
    # first: /docs and /readyz answer while the worker is being built (the socket is bound
    # exactly when the API is one of the parts)
    if api_sock is not None:
        server = _api_server(wiring.api_app(runtime))
        tasks["api"] = asyncio.create_task(server.serve(sockets=[api_sock]))
        deadline = time.monotonic() + 10
        while not server.started and not tasks["api"].done() and time.monotonic() < deadline:  # noqa: ASYNC110 - uvicorn offers only its `started` flag, no event to await
            await asyncio.sleep(0.02)
    if parts.worker or parts.processor:
        from rejse.worker import run_worker

        services = parts.processor or (parts.worker and parts.worker_services)
        tasks["worker" if parts.worker else "processor"] = asyncio.create_task(
            run_worker(
                runtime,
                stop,
                workflows=wiring.workflows() if parts.worker else [],
                activities=wiring.activities(runtime) if parts.worker else [],
                services=wiring.background_services(runtime) if services else [],
            )
        )
    if parts.scheduler:
        from rejse.scheduler import run_scheduler

        tasks["scheduler"] = asyncio.create_task(
            run_scheduler(runtime, stop, jobs=wiring.scheduler_jobs(runtime))
        )

    host = display_host(settings.api_host)
    started = Started(
        api_url=f"http://{host}:{settings.api_port}" if parts.api else None,
        temporal_address=settings.effective_temporal_address,
        temporal_ui_url=devserver.ui_url if devserver else None,
        new_admin_key=new_admin_key,
    )
    log.info("rejse_started", parts=list(tasks))
    ran.started = True
    code = 0
    if on_started is not None:
        on_started(started)

    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopper, *tasks.values()}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for name, task in tasks.items():
        if task in done and not stop.is_set():
            exc = None if task.cancelled() else task.exception()
            log.error(
                "part_stopped_unexpectedly",
                part=name,
                error=repr(exc) if exc else f"returned {task.result()!r}",
            )
            code = 1
    stop.set()
    return code


def _serve_metrics(settings: Settings) -> Callable[[], None]:
    """A process without the API (worker, processor, scheduler) serves its Prometheus
    counters at REJSE_METRICS_HOST:REJSE_METRICS_PORT; returns how to stop serving."""
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(settings.metrics_port or 0, addr=settings.metrics_host)
    except OSError as exc:
        raise ConfigError(
            f"metrics: cannot serve on {settings.metrics_host}:{settings.metrics_port} "
            f"({exc.strerror}; REJSE_METRICS_PORT)"
        ) from None
    return server.shutdown


async def _stop_parts(
    tasks: dict[str, asyncio.Task[object]],
    stop: asyncio.Event,
    server: Callable[[], uvicorn.Server | None],
) -> None:
    """Stop the API, worker and scheduler (30 s to finish, then cancelled); the embedded
    Temporal server is stopped after them by the exit stack."""
    stop.set()
    api = server()
    if api is not None:
        api.should_exit = True
    others = [t for name, t in tasks.items() if name != "temporal"]
    if others:
        _, pending = await asyncio.wait(others, timeout=30)
        for task in pending:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
