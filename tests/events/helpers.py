"""Helpers shared by the events/profiles tests."""

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent / "examples"  # copies of /work/shared/examples


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())
