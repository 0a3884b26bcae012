"""The test extra admits only versions of the third-party tools the tests are written for, so
`pip install -e '.[test]'` under an older constraint cannot pick one the suite fails to import."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def requirement_of(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    [requirement] = [r for r in found if r.name == name]
    return requirement


def test_the_test_extra_admits_only_the_schemathesis_the_sweep_is_written_for():
    # tests/test_schemathesis.py imports schemathesis.core and schemathesis.checks'
    # CheckFunction, which exist from 4.0 on; it was written against 4.32.
    specifier = requirement_of("schemathesis").specifier
    assert not specifier.contains("3.39.16"), specifier
    assert not specifier.contains("4.0.0"), specifier
    assert specifier.contains(version("schemathesis")), (specifier, version("schemathesis"))


def test_the_test_extra_admits_only_the_sdk_versions_the_sdk_tests_run():
    # The findings and tests/test_sdks.py are about these releases.
    for name, accepted, refused in [
        ("segment-analytics-python", "2.4.0", "2.3.0"),
        ("rudder-sdk-python", "2.1.0", "2.0.0"),
    ]:
        specifier = requirement_of(name).specifier
        assert specifier.contains(accepted), (name, specifier)
        assert not specifier.contains(refused), (name, specifier)
        assert specifier.contains(version(name)), (name, specifier, version(name))
