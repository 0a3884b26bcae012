"""Every benchmark in one table: `python -m bench [--quick] [--only ingest,processor]`.

Each benchmark module (`bench/<name>.py` with a `__main__` block) runs as its own process,
`python -m bench.<name> [--quick]`, one after the other (never two at once: they would time
each other). Its `BENCH-RESULT` lines (`bench.results.emit`) become the table's rows: figure,
our value, the baseline measured in the same run, the ratio, the target and whether it is met.
A benchmark that fails or reports nothing gets a row saying so. Each benchmark's own output is
kept in `<log dir>/<name>.log` (default: a temporary folder, printed at the end).

`--quick` is a short pass for a first look: smaller data and fewer rounds, so its figures are
noisier than a full run's and the targets are judged on them all the same."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.results import Result, parse

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"__main__", "results"}


def modules(folder: Path = HERE) -> list[str]:
    """The benchmark modules: files of bench/ that run as a program (helpers such as the
    baseline app or the data generators have no `__main__` block)."""
    return sorted(
        path.stem
        for path in folder.glob("*.py")
        if path.stem not in NOT_BENCHMARKS and 'if __name__ == "__main__"' in path.read_text()
    )


@dataclass(frozen=True)
class Run:
    module: str
    results: list[Result]
    code: int | None  # None: timed out
    seconds: float
    log: Path

    @property
    def problem(self) -> str | None:
        if self.code is None:
            return f"timed out after {self.seconds:.0f} s"
        if self.code != 0:
            return f"failed (exit code {self.code})"
        if not self.results:
            return "reported no figures (no BENCH-RESULT lines)"
        return None


def run(module: str, *, quick: bool, timeout: float, logs: Path) -> Run:
    command = [sys.executable, "-m", f"bench.{module}", *(["--quick"] if quick else [])]
    log = logs / f"{module}.log"
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        out, err, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code = None
    log.write_text(f"$ {' '.join(command)}\n{out}\n--- stderr ---\n{err}")
    return Run(module, parse(out), code, time.monotonic() - started, log)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def table(runs: list[Run]) -> str:
    """The one table: a row per figure, and a row per benchmark that gave none."""
    header = ["benchmark", "figure", "ours", "baseline", "ratio", "target", "met"]
    rows: list[list[str]] = []
    for item in runs:
        for r in item.results:
            judged = not r.target.startswith("none")
            rows.append(
                [
                    r.bench.removeprefix("bench."),
                    r.figure,
                    f"{_number(r.value)} {r.unit}",
                    f"{_number(r.baseline)} {r.unit} ({r.baseline_name})"
                    if r.baseline is not None
                    else "-",
                    f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                    r.target if judged else "-",
                    ("yes" if r.met else "NO") if judged else "n/a",
                ]
            )
        if item.problem:
            rows.append([item.module, item.problem, "", "", "", "", "NO"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    out = [line(header), "-+-".join("-" * w for w in widths), *(line(row) for row in rows)]
    judged_rows = [row for row in rows if row[6] in ("yes", "NO")]
    met = sum(row[6] == "yes" for row in judged_rows)
    out.append(f"{met} of {len(judged_rows)} targets met")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short pass of every benchmark")
    parser.add_argument("--only", default="", help="comma-separated modules (default: all)")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per benchmark (default 1800)"
    )
    parser.add_argument("--logs", type=Path, default=None, help="folder for each bench's output")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or modules()
    unknown = set(chosen) - set(modules())
    if unknown:
        parser.error(f"no such benchmark: {', '.join(sorted(unknown))} (have: {modules()})")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="rejse-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    runs = []
    for module in chosen:
        print(f"running bench.{module}{' --quick' if args.quick else ''} ...", file=sys.stderr)
        item = run(module, quick=args.quick, timeout=args.timeout, logs=logs)
        print(f"  {item.seconds:.0f} s, {item.problem or 'ok'}", file=sys.stderr)
        runs.append(item)
    print(table(runs))
    print(f"(each benchmark's own output: {logs})")


if __name__ == "__main__":
    main()
