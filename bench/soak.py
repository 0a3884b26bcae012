"""Soak: a steady event rate over loopback for minutes, with journeys and sends, on the stack as
the split processes run it (`rejse api`, `rejse worker` with its processor, a persisted
Temporal dev server, a counting aiosmtpd; tests/reliability/stack.py).

Every second the feeder posts `rate` events to `/v1/batch` (1 in `--checkout-every` a
`Checkout Started` of a new customer, which starts the abandoned-cart journey with a one-second
wait and sends its reminder; the rest `Product Viewed` of known customers). The default, 1 in
100, is above a webshop's own share of checkouts in its event stream (a visit has tens of
views, and most visits never reach the checkout); a heavier mix measures the journeys' ceiling
rather than a steady load (docs/operations.md, "Soak"). Every ten seconds it samples each
process's resident memory (/proc) and the processor's lag (the oldest unprocessed event's age).
At the end it waits for the backlog to drain and checks the books.

Figures (each emitted): the rate held, errors (non-2xx answers), memory growth of each process
from the first minute's sample to the last, the worst lag, and that every event was processed
and every reminder delivered once.

    python -m bench.soak [--minutes 10] [--rate 500] [--checkout-every 100] [--database-url URL]
        [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.results import emit
from tests.reliability.stack import Stack, wait_until

ME = "bench.soak"


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children (the CLI wrapper is the same process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def lag_seconds(stack: Stack) -> float:
    sql = "SELECT min(received_at) FROM event WHERE processed_at IS NULL"
    import datetime as dt

    import sqlalchemy as sa

    with stack.engine.connect() as conn:
        oldest = conn.execute(sa.text(sql)).scalar_one()
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):
        oldest = dt.datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return max((dt.datetime.now(dt.UTC) - oldest).total_seconds(), 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=500, help="events per second")
    ap.add_argument("--database-url", default=None, help="default: a SQLite file")
    ap.add_argument("--drain", type=float, default=300, help="seconds to wait for the backlog")
    ap.add_argument(
        "--checkout-every",
        type=int,
        default=100,
        help="1 in this many events is a Checkout Started that starts a journey",
    )
    ap.add_argument("--quick", action="store_true", help="one minute at 100/s")
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.rate = 1.0, 100

    folder = Path(tempfile.mkdtemp(prefix="rejse-soak-"))
    url = args.database_url or f"sqlite:///{folder / 'rejse.db'}"
    stack = Stack(folder, url)
    stack.prepare()
    stack.start()
    procs = {p.name: p.proc.pid for p in (*stack.apis, *stack.workers) if p.proc}
    errors = 0
    sent_events = 0
    checkouts = 0
    samples: list[dict] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(10):
            samples.append(
                {
                    "t": time.monotonic(),
                    "lag": lag_seconds(stack),
                    **{name: rss_mb(pid) for name, pid in procs.items()},
                }
            )

    threading.Thread(target=sampler, daemon=True).start()
    pool = ThreadPoolExecutor(max_workers=4)
    start = time.monotonic()
    deadline = start + args.minutes * 60
    tick = start
    try:
        while tick < deadline:
            new = max(args.rate // args.checkout_every, 1)
            batch = stack.checkouts(checkouts, new) + [
                {**v, "messageId": f"soak-pv-{sent_events + k}"}
                for k, v in enumerate(stack.views(sent_events, args.rate - new, 1000))
            ]
            chunks = [batch[i : i + 100] for i in range(0, len(batch), 100)]
            codes = list(pool.map(stack.post_batch, chunks))
            errors += sum(1 for c in codes if c != 200)
            checkouts += new
            sent_events += len(batch)
            tick += 1.0
            time.sleep(max(tick - time.monotonic(), 0))
        fed = time.monotonic() - start
        held = sent_events / fed
        print(f"fed {sent_events} events in {fed:.0f} s: {held:.0f}/s, {errors} errors")
        drained = True
        try:
            wait_until(lambda: stack.unprocessed() == 0, args.drain, "the backlog drained")
            wait_until(lambda: stack.sent() >= checkouts, args.drain, "every reminder sent")
        except AssertionError as exc:
            drained = False
            print(f"not drained: {exc}")
        drain_s = time.monotonic() - start - fed
        time.sleep(2)
        stop.set()
        left = stack.unprocessed()
        total = stack.scalar("SELECT count(*) FROM event")
        doubled = stack.smtp.box.doubled()
        delivered = stack.smtp.box.total
    finally:
        stop.set()
        pool.shutdown()
        stack.stop()

    warm = [s for s in samples if s["t"] - start >= 60] or samples
    worst_lag = max((s["lag"] for s in samples), default=0.0)
    print(
        f"after the feed: {'drained' if drained else 'NOT drained'} in {drain_s:.1f} s"
        f" ({left} events unprocessed); worst lag {worst_lag:.1f} s"
    )
    print(
        f"events stored {total} of {sent_events}; reminders delivered {delivered} of {checkouts},"
        f" doubled {len(doubled)}"
    )
    emit(
        ME,
        "events/s held",
        held,
        "/s",
        baseline=float(args.rate),
        baseline_name="the rate asked for",
        target=f">= {args.rate}/s",
        met=held >= args.rate * 0.98,
    )
    emit(
        ME,
        "errors (non-2xx answers)",
        float(errors),
        "",
        baseline=None,
        baseline_name="",
        target="0",
        met=errors == 0,
    )
    emit(
        ME,
        "every event processed, every reminder delivered once",
        float(total == sent_events and delivered == checkouts and not doubled),
        "",
        baseline=None,
        baseline_name="",
        target="1",
        met=total == sent_events and delivered == checkouts and not doubled,
    )
    emit(
        ME,
        "worst processor lag",
        worst_lag,
        "s",
        baseline=None,
        baseline_name="",
        target="bounded (<= 10 s)",
        met=worst_lag <= 10,
    )
    for name in procs:
        first, last = warm[0][name], samples[-1][name]
        growth = (last - first) / first * 100 if first else 0.0
        print(
            f"{name}: rss {first:.0f} MB after the first minute, {last:.0f} MB at the end "
            f"({growth:+.1f} %), median {statistics.median(s[name] for s in samples):.0f} MB"
        )
        emit(
            ME,
            f"memory growth, {name} (from {first:.0f} MB after the first minute)",
            growth,
            "%",
            baseline=None,
            baseline_name="",
            target="< 10 %",
            met=growth < 10,
        )


if __name__ == "__main__":
    main()
