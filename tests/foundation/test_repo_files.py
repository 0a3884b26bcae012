"""The README's two quickstart commands, `.ci/run` and docker-compose.yml stay consistent with
the code (docker-compose cannot run here: no Docker engine, so its settings are checked)."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
import yaml

from rejse.cli import app
from rejse.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def quickstart(name: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name} -->(.*?)<!-- /{name} -->", text, re.S)
    assert block, f"README.md lacks the {name} markers"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("```")]


def test_readme_has_exactly_two_one_line_quickstart_commands():
    run, test = quickstart("quickstart-run"), quickstart("quickstart-test")
    assert len(run) == 1
    assert run[0].startswith("python -m venv .venv")
    assert run[0].endswith("rejse up")
    assert len(test) == 1
    assert "pip install -e '.[dev]'" in test[0]  # the pinned gates and the test extras
    # the gates run before the tests, in this order
    gates = ["ruff check .", "ruff format --diff .", "mypy", "python -m pytest"]
    assert [test[0].index(g) for g in gates] == sorted(test[0].index(g) for g in gates)
    assert test[0].endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_against_postgresql():
    script = (ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    assert "quickstart-test" in script  # reads the command from the README, does not copy it
    assert (
        'REJSE_TEST_DATABASE_URL="postgresql+psycopg://postgres@${PG_HOST}:${PG_PORT}/test"'
        in script
    )
    assert "PG_HOST=127.0.0.1" in script
    assert "PG_PORT=5432" in script
    assert "pg_isready" in script
    assert "apt-get install -y postgresql" in script
    assert "export CI=true" in script


def test_docker_compose_uses_real_settings_and_commands():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "temporal", "temporal-ui", "api", "worker", "scheduler"} <= set(services)
    commands = {c.name for c in typer.main.get_command(app).commands.values()}
    fields = {f"REJSE_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        if service.get("image") != "rejse:latest":
            continue
        assert service["command"][0] in commands, (name, service["command"])
        unknown = {k for k in service["environment"] if k.startswith("REJSE_")} - fields
        assert not unknown, f"{name}: no such settings {unknown}"
    assert services["api"]["environment"]["REJSE_ENVIRONMENT"] == "production"


def test_dockerfile_copies_what_exists():
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
