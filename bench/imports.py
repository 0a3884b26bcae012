"""`rejse import` of Segment JSON lines beside `/v1/batch` with the same events, same run.

The file: `--events` track events (default 1,000,000) written once as JSON lines, each with
its own messageId and a timestamp in the past (an archive), over 10,000 users.

- ours: `run_import` of the file in this process, exactly as `rejse import FILE` calls it
  (settings from the same REJSE_* environment, `open_database`, migrations, then the import),
  without the progress bar; timed from the import's start to its end.
- baseline: the same lines POSTed to `/v1/batch` of the real app over HTTP: uvicorn (1 worker,
  access log off, the API only, as in bench.ingest) in a subprocess on loopback, `--batch`
  events per request (default 100), `--connections` keep-alive connections (default 4) from
  threads of this process; timed from the first request to the last answer. Every request must
  answer 200 with all its events accepted.

Each side stores into a fresh SQLite database file of the same settings (deleted after its
round); rounds alternate which side goes first (`--rounds`, default 3). Figures: the median
events/s of each side and their ratio (target >= 1.0). Events/s counts the events stored.

    python -m bench.imports [--events 1000000] [--rounds 3] [--batch 100] [--connections 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from bench.ingest import free_port, serve
from bench.results import emit

EVENT = (
    '{"type":"track","userId":"user-%d","event":"Product Viewed","messageId":"imp-%d",'
    '"properties":{"product_id":"8123456789012","sku":"RJ-AAR-M-NV","price":899.0,'
    '"currency":"DKK"},"context":{"ip":"192.0.2.1","locale":"da-DK"},'
    '"timestamp":"2024-%02d-%02dT09:10:00+01:00"}\n'
)
SECRET = "bench-secret-" + "x" * 32


def write_file(path: Path, events: int) -> None:
    with path.open("w") as fh:
        for i in range(events):
            fh.write(EVENT % (i % 10_000, i, i % 12 + 1, i % 28 + 1))


def environment(url: str, data_dir: Path) -> dict[str, str]:
    return {
        "REJSE_DATABASE_URL": url,
        "REJSE_DATA_DIR": str(data_dir),
        "REJSE_ENVIRONMENT": "test",
        "REJSE_LOG_LEVEL": "WARNING",
        "REJSE_SECRET_KEY": SECRET,
        "REJSE_RATE_LIMIT_INGEST": "100000000/second",  # the baseline's HTTP: never limited
    }


def ours(path: Path, work: Path, events: int) -> float:
    from rejse.db import open_database, redact
    from rejse.imports.runner import run_import
    from rejse.migrate import migrate_database
    from rejse.settings import load_settings

    url = f"sqlite:///{work / 'ours.db'}"
    os.environ.update(environment(url, work / "data"))
    settings = load_settings()
    engine = open_database(settings)
    try:
        migrate_database(settings, engine)
        began = time.perf_counter()
        summary = run_import(
            engine,
            path,
            fmt="segment",
            data_dir=settings.data_dir,
            database=redact(settings.effective_database_url),
        )
        seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    if summary.stored != events or summary.bad:
        raise SystemExit(f"ours: {summary.stored} stored, {summary.bad} refused of {events}")
    return summary.stored / seconds


def bodies(path: Path, batch: int) -> Iterator[tuple[bytes, int]]:
    """`/v1/batch` bodies of `batch` lines of the file (each line already has its `type`)."""
    with path.open("rb") as fh:
        lines: list[bytes] = []
        for raw in fh:
            lines.append(raw.rstrip(b"\n"))
            if len(lines) == batch:
                yield b'{"batch":[' + b",".join(lines) + b"]}", len(lines)
                lines = []
        if lines:
            yield b'{"batch":[' + b",".join(lines) + b"]}", len(lines)


def post_all(port: int, key: str, path: Path, batch: int, connections: int) -> tuple[int, float]:
    """POST the file's bodies over `connections` keep-alive connections; (accepted, seconds)."""
    work: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=connections * 4)
    accepted = [0] * connections
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def sender(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while (job := work.get()) is not None:
                body, count = job
                conn.request("POST", "/v1/batch", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200:
                    failures.append(f"{response.status} {answer[:200]!r}")
                    continue
                got = orjson.loads(answer)["accepted"]
                if got != count:
                    failures.append(f"{got} of {count} accepted: {answer[:200]!r}")
                accepted[n] += got
        finally:
            conn.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for job in bodies(path, batch):
        work.put(job)
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise SystemExit(f"baseline: {len(failures)} failed requests, e.g. {failures[0]}")
    return sum(accepted), seconds


def baseline(path: Path, work: Path, events: int, batch: int, connections: int) -> float:
    from sqlmodel import Session

    from rejse.db import make_engine
    from rejse.keys import create_key
    from rejse.migrate import upgrade
    from rejse.roles import Role

    url = f"sqlite:///{work / 'baseline.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as s:
        _, key = create_key(s, name="bench", role=Role.ingest)
        s.commit()
    engine.dispose()
    port = free_port()
    server = serve("tests.events.crash_app:app", port, environment(url, work / "data"), True)
    try:
        stored, seconds = post_all(port, key, path, batch, connections)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if stored != events:
        raise SystemExit(f"baseline: {stored} stored of {events}")
    return stored / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="events per /v1/batch request")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--quick", action="store_true", help="a short pass (python -m bench --quick)"
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 50_000, 1
    with tempfile.TemporaryDirectory(prefix="rejse-bench-imports-") as d:
        root = Path(d)
        path = root / "history.jsonl"
        write_file(path, args.events)
        size = path.stat().st_size
        print(f"{args.events:,} events, {size / 1e6:.0f} MB of JSON lines", file=sys.stderr)
        rates: dict[str, list[float]] = {"ours": [], "baseline": []}
        for n in range(args.rounds):
            order = ("ours", "baseline") if n % 2 == 0 else ("baseline", "ours")
            for side in order:
                work = root / f"{side}-{n}"
                work.mkdir()
                if side == "ours":
                    rate = ours(path, work, args.events)
                else:
                    rate = baseline(path, work, args.events, args.batch, args.connections)
                rates[side].append(rate)
                print(f"round {n + 1} {side:8}: {rate:9.0f} events/s", file=sys.stderr)
                for file in sorted(work.rglob("*"), reverse=True):  # keep the disk free
                    file.unlink() if file.is_file() else file.rmdir()
    mine, theirs = statistics.median(rates["ours"]), statistics.median(rates["baseline"])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"rejse import of {args.events:,} Segment JSON lines vs /v1/batch ({args.batch} events "
        f"per request, {args.connections} connections, uvicorn 1 worker), fresh SQLite each, "
        f"median of {args.rounds} interleaved rounds; load average {load}"
    )
    print(f"ours {mine:.0f} events/s   baseline {theirs:.0f} events/s   ratio {mine / theirs:.2f}")
    emit(
        "bench.imports",
        f"rejse import, {args.events:,} events",
        mine,
        "events/s",
        baseline=theirs,
        baseline_name="/v1/batch over HTTP",
        target=">= 1.0x",
        met=mine >= theirs,
    )


if __name__ == "__main__":
    main()
