"""`.ci/run` in a scratch copy whose README holds a stand-in test command: it runs exactly that
command with CI=true and REJSE_TEST_DATABASE_URL set, and treats pytest's "no tests" (exit 5)
as a failure. Runs only where PostgreSQL answers (so the script never installs anything here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pg_ready() -> bool:
    return (
        shutil.which("pg_isready") is not None
        and subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0
    )


pytestmark = pytest.mark.skipif(not _pg_ready(), reason="needs PostgreSQL at 127.0.0.1:5432")


def run_ci_with(tmp_path: Path, command: str) -> subprocess.CompletedProcess:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text(
        f"# x\n\n<!-- quickstart-test -->\n```\n{command}\n```\n<!-- /quickstart-test -->\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_the_readme_command_with_ci_settings(tmp_path):
    check = (
        "test -f README.md && python -c 'import os, sys; "
        'sys.exit(os.environ["CI"] != "true" or os.environ["REJSE_TEST_DATABASE_URL"] '
        '!= "postgresql+psycopg://postgres@127.0.0.1:5432/test")\''
    )
    result = run_ci_with(tmp_path, check)
    assert result.returncode == 0, result.stderr


def test_no_tests_collected_is_a_failure(tmp_path):
    result = run_ci_with(tmp_path, "python -c 'import sys; sys.exit(5)'")
    assert result.returncode == 1
    assert "collected no tests" in result.stderr


def test_a_failing_command_fails(tmp_path):
    result = run_ci_with(tmp_path, "false")
    assert result.returncode == 1
    assert "exit code 1" in result.stderr
