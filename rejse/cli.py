"""The `rejse` command line (typer). Other domains add their sub-commands at the bottom with
one `app.add_typer(...)` line each.

Bad configuration ends with one line `rejse: error: <problem>` on stderr and exit code 2."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy.exc
import typer
from rich.console import Console
from rich.table import Table

from rejse.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

CONFIG_ERROR_EXIT = 2

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class RejseTyper(typer.Typer):
    """Turns configuration problems into one line on stderr instead of a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ConfigError as exc:
            _fail(str(exc))
        except sqlalchemy.exc.DBAPIError as exc:
            first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            _fail(f"database: {first}")
        except KeyboardInterrupt:
            sys.exit(130)


def _fail(message: str) -> None:
    err_console.print(f"rejse: error: {message}", markup=False)
    sys.exit(CONFIG_ERROR_EXIT)


app = RejseTyper(
    help="rejse: customer journeys as Temporal workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _run(settings: Settings, parts: Any) -> None:
    """Long-running commands: configure logging, serve until SIGINT/SIGTERM."""
    from rejse.logging import configure_logging
    from rejse.up import default_secret_warning, serve

    json_logs = settings.log_json if settings.log_json is not None else not sys.stderr.isatty()
    configure_logging(level=settings.log_level, json=json_logs)
    warning = default_secret_warning(settings, parts)
    if warning is not None:  # before anything starts, where a person looks: on stderr
        err_console.print(warning, style="bold red", markup=False, highlight=False)
    code = asyncio.run(serve(settings, parts, on_started=_print_started))
    raise typer.Exit(code)


def _print_started(started: Any) -> None:
    lines = []
    if started.api_url:
        lines += [
            f"[bold]API[/]              {started.api_url}",
            f"[bold]API docs[/]         {started.api_url}/docs",
            f"[bold]Console[/]          {started.api_url}/console",
        ]
    if started.temporal_ui_url:
        lines.append(f"[bold]Temporal Web UI[/]  {started.temporal_ui_url}")
    lines.append(f"[bold]Temporal (gRPC)[/]  {started.temporal_address}")
    console.print("[green]rejse is running[/] (Ctrl-C stops it)")
    for line in lines:
        console.print("  " + line)
    if started.new_admin_key:
        console.print(
            "\n[yellow]No admin API key existed, so one was created. It is shown only "
            "now; store it:[/]"
        )
        console.print(f"  {started.new_admin_key}", markup=False, highlight=False)
        console.print(
            f"  e.g. curl -H 'Authorization: Bearer <key>' {started.api_url or ''}/api/keys",
            markup=False,
            highlight=False,
        )


DataDir = Annotated[
    Path | None, typer.Option(help="Data folder [env: REJSE_DATA_DIR, default .rejse]")
]
Host = Annotated[str | None, typer.Option(help="API host [env: REJSE_API_HOST, default 127.0.0.1]")]
Port = Annotated[int | None, typer.Option(help="API port [env: REJSE_API_PORT, default 8000]")]


@app.command()
def up(
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    temporal_port: Annotated[
        int | None,
        typer.Option(help="Embedded Temporal gRPC port [env: REJSE_TEMPORAL_PORT, default 7233]"),
    ] = None,
    temporal_ui_port: Annotated[
        int | None,
        typer.Option(help="Temporal Web UI port [env: REJSE_TEMPORAL_UI_PORT, default 8233]"),
    ] = None,
) -> None:
    """Everything in one command: migrate, embedded Temporal, worker, scheduler and API."""
    from rejse.up import Parts

    settings = _settings(
        data_dir=data_dir,
        api_host=host,
        api_port=port,
        temporal_port=temporal_port,
        temporal_ui_port=temporal_ui_port,
    )
    _run(settings, Parts.everything())


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """Only the API (split mode; Temporal at REJSE_TEMPORAL_ADDRESS)."""
    from rejse.up import Parts

    _run(_settings(api_host=host, api_port=port), Parts(api=True))


@app.command()
def worker(
    processor: Annotated[
        bool,
        typer.Option(
            "--processor/--no-processor",
            help="also run the event processor (and the other background services) here",
        ),
    ] = True,
) -> None:
    """Only the Temporal worker and background services (split mode; REJSE_TEMPORAL_ADDRESS)."""
    from rejse.up import Parts

    _run(_settings(), Parts(worker=True, worker_services=processor))


@app.command("processor")
def processor_command() -> None:
    """Only the event processor and the other background services, without the Temporal
    worker (split mode: scale processors apart from workers)."""
    from rejse.up import Parts

    _run(_settings(), Parts(processor=True))


@app.command()
def scheduler() -> None:
    """Only the scheduler (split mode; run exactly one)."""
    from rejse.up import Parts

    _run(_settings(), Parts(scheduler=True))


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from rejse.db import open_database, redact
    from rejse.migrate import migrate_database

    settings = _settings()
    engine = open_database(settings)
    migrate_database(settings, engine)
    engine.dispose()
    console.print(f"database migrated: {redact(settings.effective_database_url)}", markup=False)


@app.command()
def backup(
    folder: Annotated[Path, typer.Argument(help="A new or empty folder for the copies")],
    data_dir: DataDir = None,
) -> None:
    """Copy the embedded default's databases (rejse's SQLite, then Temporal's temporal.db)
    while rejse runs, each a consistent snapshot (SQLite's online backup). PostgreSQL:
    use pg_dump (docs/operations.md)."""
    from rejse.backup import backup as run_backup

    for item in run_backup(_settings(data_dir=data_dir), folder):
        console.print(
            f"{item.name}: {item.bytes:,} bytes from {item.source} in {item.seconds:.2f} s",
            markup=False,
        )
    console.print(f"backup written to {folder.resolve()}", markup=False)


@app.command()
def restore(
    folder: Annotated[Path, typer.Argument(help="A folder made by `rejse backup`")],
    data_dir: DataDir = None,
) -> None:
    """Put a backup in place of the data folder's databases (rejse up must not be running on
    it); what was there is moved to <data dir>/before-restore-<time>/."""
    from rejse.backup import restore as run_restore
    from rejse.up import lock_data_dir

    settings = _settings(data_dir=data_dir)
    lock = lock_data_dir(settings)  # refuses while a `rejse up` holds the folder
    try:
        restored = run_restore(settings, folder)
    finally:
        lock.close()
    for target in restored.targets:
        console.print(f"restored {target}", markup=False)
    if restored.set_aside is not None:
        console.print(f"the databases that were there: {restored.set_aside}", markup=False)


def _engine() -> Engine:
    from rejse.db import open_database

    return open_database(_settings())


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, marketer, analyst, sales or ingest")],
    name: Annotated[str | None, typer.Option(help="What the key is for")] = None,
    rep: Annotated[
        str | None, typer.Option(help="Sales keys: the rep id whose leads the key sees")
    ] = None,
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    from sqlmodel import Session

    from rejse.errors import DomainError
    from rejse.keys import create_key
    from rejse.roles import Role

    try:
        chosen = Role(role)
    except ValueError:
        raise ConfigError(
            f"--role: {role!r} is not one of {', '.join(r.value for r in Role)}"
        ) from None
    engine = _engine()
    with Session(engine) as session:
        try:
            row, raw = create_key(
                session, name=name or f"{chosen.value} key", role=chosen, rep_id=rep
            )
        except DomainError as exc:
            raise ConfigError(f"--rep: {exc.message}") from None
        session.commit()
        key_id = row.id
    engine.dispose()
    err_console.print(f"created {chosen.value} key {key_id}; it is shown only now:", markup=False)
    print(raw)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their values)."""
    from sqlmodel import Session

    from rejse.keys import list_keys

    engine = _engine()
    table = Table("id", "name", "role", "created", "revoked")
    with Session(engine) as session:
        for row in list_keys(session):
            table.add_row(
                row.id,
                row.name,
                row.role,
                row.created_at.isoformat(timespec="seconds"),
                row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
            )
    engine.dispose()
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`")],
) -> None:
    """Revoke an API key (takes effect within seconds in running processes)."""
    from sqlmodel import Session

    from rejse.keys import revoke_key

    engine = _engine()
    with Session(engine) as session:
        row = revoke_key(session, key_id=key_id)
        session.commit()
    engine.dispose()
    if row is None:
        err_console.print(f"rejse: error: no API key with id {key_id!r}", markup=False)
        raise typer.Exit(1)
    console.print(f"revoked {key_id}", markup=False)


journeys_app = typer.Typer(help="Journeys: install the shipped examples.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")


@journeys_app.command("install-examples")
def journeys_install_examples(
    publish: Annotated[
        bool, typer.Option("--publish/--draft", help="publish them (default) or leave drafts")
    ] = True,
) -> None:
    """Install the example journeys (abandoned cart) into the configured database."""
    from rejse import wiring
    from rejse.db import open_database
    from rejse.journeys.examples import install_examples
    from rejse.migrate import migrate_database
    from rejse.runtime import Runtime

    settings = _settings()
    engine = open_database(settings)
    migrate_database(settings, engine)
    runtime = Runtime.create(settings, engine=engine)
    try:
        for key, what in install_examples(
            runtime, activity_names=wiring.activity_names(), publish=publish
        ):
            console.print(f"{key}: {what}", markup=False)
    finally:
        runtime.engine.dispose()


IMPORT_HELP = """Import history from FILE: Segment JSON lines, a CSV with a column map, or a Shopify
orders export. Events go through the same validation and store as /v1/batch, idempotent by
messageId (importing a file twice stores nothing new). Bad lines are reported with their line
number and field and skipped. Ctrl-C stops; the same command again continues where it stopped.

Events older than the import's start build profiles, customer value and audience memberships
but start no journey and hand no lead off. The event processor (rejse up or rejse worker)
applies them.

\b
Formats (--format; default: segment, or for a .csv file csv with --map, else shopify-orders):
  segment         one Segment message per line, with "type" (as in a /v1/batch); a line
                  without messageId gets one from its content; sentAt is ignored (the
                  timestamp is taken as the event's time)
  csv             one message per row: --map column=field[:type],... (repeatable) names where
                  each column goes; --set field=value gives every row a constant
  shopify-orders  the orders CSV the Shopify admin exports: per order an identify (email,
                  phone, billing name, Accepts Marketing as email consent), an Order Completed
                  (order_id = Id, total/revenue/value = Total, products from the Lineitem
                  columns) and, when Refunded Amount > 0, an Order Refunded; orders that are
                  pending, authorized, voided or expired and unpaid are skipped, as are orders
                  with neither email nor phone

\b
CSV fields: type, event, userId, anonymousId, messageId, timestamp, groupId, previousId,
name, category, traits.<path>, properties.<path>, context.<path>; types: string (default),
number, integer, boolean (true/false, yes/no, 1/0), json. Empty cells are left out. A row
without type is a track when it has an event, else an identify. Times: ISO 8601 or
"2024-01-31 12:00:00 +0100"; without an offset, UTC.

\b
Example:
  rejse import orders.csv --set "event=Order Completed" \\
    --map "Email=traits.email,Email=userId,Order=properties.order_id" \\
    --map "Total=properties.revenue:number,Currency=properties.currency,Date=timestamp"
"""


@app.command("import", help=IMPORT_HELP)
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file")
    ],
    format: Annotated[
        str | None, typer.Option("--format", help="segment, csv or shopify-orders")
    ] = None,
    map: Annotated[
        list[str] | None, typer.Option("--map", help="CSV: column=field[:type],...")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="CSV: field=value for every row")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [env: REJSE_DATABASE_URL]")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    from rejse.db import open_database, redact
    from rejse.imports.formats import FormatError, parse_constants, parse_map
    from rejse.imports.progress import RichReporter
    from rejse.imports.runner import run_import
    from rejse.migrate import migrate_database

    chosen = format or (
        ("csv" if map else "shopify-orders") if file.suffix.lower() == ".csv" else "segment"
    )
    try:
        mapping = parse_map(map or [])
        constants = parse_constants(set_ or [])
    except FormatError as exc:
        raise ConfigError(str(exc)) from None
    if chosen != "csv" and (mapping or constants):
        raise ConfigError(f"--map and --set are for --format csv, not {chosen}")
    settings = _settings(database_url=database_url, data_dir=data_dir)
    engine = open_database(settings)
    try:
        migrate_database(settings, engine)
        database = redact(settings.effective_database_url)
        reporter = RichReporter(err_console, label=f"{file.name} ({chosen})")
        try:
            summary = run_import(
                engine,
                file,
                fmt=chosen,
                data_dir=settings.data_dir,
                database=database,
                mapping=mapping,
                constants=constants,
                options=[*(map or []), *(set_ or [])],
                reporter=reporter,
            )
        except FormatError as exc:
            raise ConfigError(str(exc)) from None
    finally:
        engine.dispose()
    if summary.restarted:
        err_console.print("the file changed since the interrupted import: started over")
    if summary.resumed_at_line:
        console.print(f"resumed at line {summary.resumed_at_line:,}", markup=False, soft_wrap=True)
    skipped = ", ".join(f"{n:,} ({why})" for why, n in sorted(summary.skipped.items()))
    console.print(
        f"{summary.records:,} records read: {summary.stored:,} events stored, "
        f"{summary.duplicates:,} already stored, {summary.bad:,} refused"
        + (f", skipped {skipped}" if skipped else "")
        + f"; {summary.events_per_second:,.0f} events/s into {database}",
        markup=False,
        soft_wrap=True,
    )
    if summary.bad > len(summary.problems):
        console.print(
            f"(the first {len(summary.problems)} refused lines are listed above)", markup=False
        )
    if summary.interrupted:
        err_console.print(
            "interrupted: run the same command again to continue where it stopped", markup=False
        )
        raise typer.Exit(130)
    if summary.bad:
        raise typer.Exit(1)
