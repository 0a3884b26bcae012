"""docker-compose.yml is valid Compose (the specification's JSON schema, vendored under
compose_spec/, and `docker compose config` where the plugin is installed), its rejse services
run real CLI commands, and its shape is what docs/operations.md promises: Temporal's maintained
images, scalable API/worker/processor, exactly one scheduler."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.foundation.procs import REPO, clean_env, rejse_command

SCHEMA = Path(__file__).parent / "compose_spec" / "compose-spec.json"
COMPOSE = REPO / "docker-compose.yml"
ENV = {
    "POSTGRES_PASSWORD": "compose-test-password",
    "REJSE_SECRET_KEY": "x" * 64,
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def rejse_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if s.get("image") == "rejse:latest"}


def test_the_compose_file_validates_against_the_compose_specification():
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_mistake():
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["api"]["restart"] = ["always"]  # must be a string
    broken["services"]["worker"]["deploy"] = {"replicas": "two"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _has_compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _has_compose_plugin(), reason="no `docker compose` plugin here")
def test_docker_compose_config_accepts_it():
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        cwd=REPO,
        env=clean_env(**ENV),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(rejse_services()))
def test_each_rejse_service_runs_a_real_command(name):
    command = rejse_services()[name]["command"]
    done = subprocess.run(
        rejse_command(*command, "--help"),
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (command, done.stderr)
    assert "Usage: rejse" in done.stdout


def test_the_stack_has_the_parts_operations_md_describes():
    services = compose()["services"]
    images = {name: s.get("image", "") for name, s in services.items()}
    # Temporal's maintained images; auto-setup is deprecated
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert images["temporal-namespace"].startswith("temporalio/admin-tools:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert not any("auto-setup" in image for image in images.values())
    rejse = rejse_services()
    assert {n: s["command"] for n, s in rejse.items()} == {
        "migrate": ["migrate"],
        "api": ["api"],
        "worker": ["worker", "--no-processor"],
        "processor": ["processor"],
        "scheduler": ["scheduler"],
    }
    assert rejse["scheduler"]["deploy"]["replicas"] == 1
    for name in ("api", "worker", "processor", "scheduler"):
        service = rejse[name]
        assert "container_name" not in service  # a fixed name cannot be scaled
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["environment"]["REJSE_ENVIRONMENT"] == "production"
    assert rejse["api"]["healthcheck"]["test"][0] == "CMD"
    for name in ("worker", "processor", "scheduler", "migrate"):
        assert rejse[name]["healthcheck"] == {"disable": True}  # the image's asks the API
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
