"""Ingestion throughput over real HTTP, each figure beside a baseline from the same run.

- `/v1/track`, one event per request: rejse (auth, validation, event + outbox rows committed
  to SQLite before the 200) vs a bare FastAPI endpoint that only parses the same JSON into a
  dict. Same server settings: uvicorn, 1 worker, access log off. Target ratio >= 0.4x.
- `/v1/batch` of 100 events: events/s through rejse (target >= 20,000/s), beside the bare
  endpoint parsing the same batches.

Load comes from a second process on loopback: `wrk` (Debian package `wrk`) with a Lua script
that gives every event a unique messageId (no duplicate short-cuts), bounded by `--seconds`.
Without wrk a bounded httpx loop is used instead (it saturates earlier; the ratio stays fair).

    python -m bench.ingest [--seconds 8] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.results import emit

ROOT = Path(__file__).resolve().parents[1]
EVENT = (
    '{"userId":"user-%d","event":"Product Viewed","messageId":"%s",'
    '"properties":{"product_id":"8123456789012","sku":"RJ-AAR-M-NV","price":899.0,'
    '"currency":"DKK"},"timestamp":"2026-11-20T09:10:00+01:00"}'
)
LUA = r"""
local counter = 0
local prefix = "%(prefix)s"
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
local function event(i, n)
  return string.format('%(event)s', n %% 1000, prefix .. "-" .. tid .. "-" .. n .. "-" .. i)
end
function request()
  counter = counter + 1
  local body
  if %(batch)d > 0 then
    local items = {}
    for i = 1, %(batch)d do
      items[i] = '{"type":"track",' .. string.sub(event(i, counter), 2)
    end
    body = '{"batch":[' .. table.concat(items, ",") .. ']}'
  else
    body = event(0, counter)
  end
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(key)s"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(target: str, port: int, env: dict[str, str], factory: bool) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        cmd.append("--factory")
    # the server writes to its own copy of the descriptor, so ours can be closed once it runs
    with open(Path(tempfile.gettempdir()) / f"rejse-bench-{target.split(':')[0]}.log", "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + 120  # a loaded machine imports slowly
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server {target} did not start")


def run_wrk(
    port: int, path: str, key: str, batch: int, seconds: int, conns: int, tag: str
) -> float:
    script = LUA % {
        "prefix": f"{tag}{time.time_ns()}",
        "event": EVENT,
        "batch": batch,
        "path": path,
        "key": key,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "-s", f.name, f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"{tag}: {errors.group(0)}", file=sys.stderr)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{tag}: {non2xx.group(1)} failed requests\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def _httpx_loop(
    port: int, path: str, key: str, batch: int, seconds: int, conns: int, tag: str
) -> float:
    done = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=conns)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def worker(w: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < stop:
                n += 1
                mid = f"{tag}-{w}-{n}"
                if batch:
                    body = (
                        '{"batch":['
                        + ",".join(
                            '{"type":"track",' + (EVENT % (n % 1000, f"{mid}-{i}"))[1:]
                            for i in range(batch)
                        )
                        + "]}"
                    )
                else:
                    body = EVENT % (n % 1000, mid)
                r = await client.post(
                    path,
                    content=body,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                assert r.status_code in (200, 202), r.text  # the bare endpoint answers 202
                done += 1

        await asyncio.gather(*(worker(w) for w in range(conns)))
    return done / seconds


def load(port: int, path: str, key: str, batch: int, seconds: int, conns: int, tag: str) -> float:
    if shutil.which("wrk"):
        return run_wrk(port, path, key, batch, seconds, conns, tag)
    return asyncio.run(_httpx_loop(port, path, key, batch, seconds, conns, tag))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate-limit", default="100000000/second", help="REJSE_RATE_LIMIT_INGEST")
    parser.add_argument(
        "--quick", action="store_true", help="a short pass (python -m bench --quick)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds = 2
    from sqlmodel import Session

    from rejse.db import make_engine
    from rejse.keys import create_key
    from rejse.migrate import upgrade
    from rejse.roles import Role

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        with Session(engine) as s:
            _, key = create_key(s, name="bench", role=Role.ingest)
            s.commit()
        engine.dispose()
        env = {
            "REJSE_DATABASE_URL": url,
            "REJSE_ENVIRONMENT": "test",
            "REJSE_LOG_LEVEL": "WARNING",
            "REJSE_SECRET_KEY": "bench-secret-" + "x" * 32,
            # counted as in production (in-process memory on SQLite), never reached;
            # `--rate-limit off` measures without the count
            "REJSE_RATE_LIMIT_INGEST": args.rate_limit,
        }
        ours_port, bare_port = free_port(), free_port()
        ours = serve("tests.events.crash_app:app", ours_port, env, factory=True)
        bare = serve("bench.bare_app:app", bare_port, {}, factory=False)
        try:
            tool = "wrk" if shutil.which("wrk") else "httpx loop"
            s, c = args.seconds, args.connections
            for port, tag in ((bare_port, "warm-bare"), (ours_port, "warm-ours")):
                load(port, "/v1/track", key, 0, 1, c, tag)  # imports, mappers, caches
                load(port, "/v1/batch", key, 100, 1, c, tag + "b")
            bare_track = load(bare_port, "/v1/track", key, 0, s, c, "bare")
            ours_track = load(ours_port, "/v1/track", key, 0, s, c, "ours")
            bare_batch = load(bare_port, "/v1/batch", key, 100, s, c, "bareb")
            ours_batch = load(ours_port, "/v1/batch", key, 100, s, c, "oursb")
            print(
                f"measured: track {ours_track:.0f} vs {bare_track:.0f} req/s, batch "
                f"{ours_batch:.0f} vs {bare_batch:.0f} req/s",
                file=sys.stderr,
            )
        finally:
            for proc in (ours, bare):
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        engine = make_engine(url)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM event").scalar()
        engine.dispose()
    print(f"ingestion over HTTP ({tool}, {c} connections, {s} s per run, uvicorn 1 worker, SQLite)")
    print(f"  /v1/track  rejse          : {ours_track:9.0f} requests/s")
    print(f"  /v1/track  bare FastAPI   : {bare_track:9.0f} requests/s   (baseline)")
    print(f"  ratio                     : {ours_track / bare_track:9.2f}x   (target >= 0.4x)")
    print(
        f"  /v1/batch  rejse          : {ours_batch * 100:9.0f} events/s"
        "   (100 per request; target >= 20000)"
    )
    print(f"  /v1/batch  bare FastAPI   : {bare_batch * 100:9.0f} events/s   (baseline)")
    print(f"  ratio                     : {ours_batch / bare_batch:9.2f}x")
    print(f"  events stored by rejse    : {stored}")
    emit(
        "bench.ingest",
        "/v1/track, one event per request",
        ours_track,
        "requests/s",
        baseline=bare_track,
        baseline_name="bare FastAPI endpoint",
        target=">= 0.4x",
        met=ours_track >= 0.4 * bare_track,
    )
    emit(
        "bench.ingest",
        "/v1/batch of 100 events",
        ours_batch * 100,
        "events/s",
        baseline=bare_batch * 100,
        baseline_name="bare FastAPI endpoint",
        target=">= 20000 events/s",
        met=ours_batch * 100 >= 20_000,
    )
    print(
        json.dumps(
            {
                "track_rps": round(ours_track),
                "track_baseline_rps": round(bare_track),
                "batch_events_per_s": round(ours_batch * 100),
                "batch_baseline_events_per_s": round(bare_batch * 100),
            }
        )
    )


if __name__ == "__main__":
    main()
