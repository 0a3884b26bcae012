"""`python -m bench` (bench/__main__.py): the table is built from canned BENCH-RESULT output
(no benchmark is run or timed here), and every benchmark module is found."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import Run, modules, table
from bench.results import emit, parse


def canned(capsys) -> str:
    emit(
        "bench.ingest",
        "/v1/track",
        6_200.0,
        "requests/s",
        baseline=10_000.0,
        baseline_name="bare FastAPI",
        target=">= 0.4x",
        met=True,
    )
    print("a benchmark's own report line")
    emit(
        "bench.ingest",
        "/v1/batch",
        15_000.0,
        "events/s",
        baseline=None,
        baseline_name="",
        target=">= 20000 events/s",
        met=False,
    )
    emit(
        "bench.scoring",
        "with scoring",
        2_047.0,
        "events/s",
        baseline=4_000.0,
        baseline_name="without",
        target="none (context)",
        met=True,
    )
    return capsys.readouterr().out


def test_the_table_has_a_row_per_figure_and_per_failed_benchmark(capsys, tmp_path):
    results = parse(canned(capsys))
    assert len(results) == 3
    runs = [
        Run("ingest", results[:2], 0, 10.0, tmp_path / "ingest.log"),
        Run("scoring", results[2:], 0, 5.0, tmp_path / "scoring.log"),
        Run("messaging", [], 2, 1.0, tmp_path / "messaging.log"),
        Run("soak", [], None, 600.0, tmp_path / "soak.log"),
    ]
    lines = table(runs).splitlines()
    assert lines[0].split(" | ")[0].strip() == "benchmark"
    assert [c.strip() for c in lines[0].split("|")] == [
        "benchmark",
        "figure",
        "ours",
        "baseline",
        "ratio",
        "target",
        "met",
    ]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")] for line in lines[2:-1]
    }
    assert rows["/v1/track"] == [
        "ingest",
        "/v1/track",
        "6,200 requests/s",
        "10,000 requests/s (bare FastAPI)",
        "0.62x",
        ">= 0.4x",
        "yes",
    ]
    assert rows["/v1/batch"][3:] == ["-", "-", ">= 20000 events/s", "NO"]
    assert rows["with scoring"][4:] == ["0.51x", "-", "n/a"]  # context: no target to judge
    assert rows["failed (exit code 2)"][0] == "messaging"
    assert rows["timed out after 600 s"][-1] == "NO"
    assert lines[-1] == "1 of 4 targets met"


def test_every_benchmark_module_is_found():
    found = modules()
    assert {"ingest", "processor", "scoring", "startup", "audiences", "imports"} <= set(found)
    assert {"results", "__main__", "bare_app", "audience_data"}.isdisjoint(found)
    for name in found:
        assert (Path(__file__).resolve().parents[2] / "bench" / f"{name}.py").exists()


def test_every_benchmark_takes_quick_and_reports_figures():
    """`python -m bench --quick` passes `--quick` to each: one without it fails its row, and
    one that never calls `emit` reports nothing (bench.journey_runs did both once)."""
    root = Path(__file__).resolve().parents[2] / "bench"
    assert "bare_cart" not in modules()
    for name in modules():
        source = (root / f"{name}.py").read_text()
        assert '"--quick"' in source, f"bench.{name} takes no --quick"
        assert "emit(" in source, f"bench.{name} reports no figure"
