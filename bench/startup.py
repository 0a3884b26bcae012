"""Start-up time: `rejse up` (fresh data folder) until `/readyz` answers 200, beside the floor
it cannot beat — the bare embedded Temporal (`temporal server start-dev`, same flags, fresh
database) until it answers a health check — measured in the same run.

    python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

from bench.results import emit
from rejse import devserver
from rejse.settings import Settings
from tests.foundation.procs import RejseUp, free_port


def rejse_up_seconds() -> float:
    workdir = Path(tempfile.mkdtemp(prefix="rejse-bench-"))
    up = RejseUp(workdir)
    try:
        up.start()
        return up.wait_ready(60)
    finally:
        if up.proc is not None and up.proc.poll() is None:
            up.stop(signal.SIGINT)
        shutil.rmtree(workdir, ignore_errors=True)


async def _until_healthy(address: str, proc: subprocess.Popen, started: float) -> float:
    while True:
        assert proc.poll() is None, "temporal exited"
        try:
            client = await Client.connect(address)
            await client.service_client.check_health()
            return time.monotonic() - started
        except Exception:  # noqa: BLE001 - not up yet
            await asyncio.sleep(0.05)


def bare_temporal_seconds() -> float:
    data = Path(tempfile.mkdtemp(prefix="rejse-bench-temporal-"))
    settings = Settings(data_dir=data, temporal_port=free_port(), temporal_ui_port=free_port())
    started = time.monotonic()
    proc = subprocess.Popen(
        devserver.command(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        return asyncio.run(_until_healthy(f"127.0.0.1:{settings.temporal_port}", proc, started))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="a short pass (python -m bench --quick)"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    ours, base = [], []
    for _ in range(args.runs):  # interleaved, so machine load hits both alike
        base.append(bare_temporal_seconds())
        ours.append(rejse_up_seconds())
    o, b = statistics.median(ours), statistics.median(base)
    print(
        f"rejse up -> /readyz 200:            median {o:.2f} s  runs {[round(x, 2) for x in ours]}"
    )
    print(
        f"baseline: bare temporal start-dev: median {b:.2f} s  runs {[round(x, 2) for x in base]}"
    )
    print(f"ratio (ours / baseline): {o / b:.2f}")
    emit(
        "bench.startup",
        "rejse up to /readyz 200",
        o,
        "s",
        baseline=b,
        baseline_name="bare temporal start-dev ready",
        target="<= 20 s",
        met=o <= 20,
    )


if __name__ == "__main__":
    main()
