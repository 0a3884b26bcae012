"""`rejse journeys install-examples` installs and publishes the abandoned-cart journey (run as the
real CLI in a subprocess); its two email templates exist in Danish and English."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlmodel import Session

from rejse.journeys import service
from rejse.messaging.template_lookup import file_locales
from rejse.settings import REPO_ROOT
from tests.journeys.conftest import EXAMPLE


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REJSE_DATABASE_URL": db_url, "REJSE_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-c", "from rejse.cli import app; app()", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_install_examples_publishes_the_abandoned_cart(db_url, engine):
    first = cli(db_url, "journeys", "install-examples")
    assert first.returncode == 0, first.stderr
    assert "abandoned-cart: created, published (v1, published)" in first.stdout
    again = cli(db_url, "journeys", "install-examples")
    assert "abandoned-cart: unchanged" in again.stdout  # idempotent
    with Session(engine) as s:
        journey = service.get_journey(s, key="abandoned-cart")
        version = service.get_version(s, key="abandoned-cart", version=1)
    assert (journey.status, journey.published_version) == ("published", 1)
    assert version.definition["exit_when"][0]["event"] == "Order Completed"


def test_example_matches_the_shared_spec_and_its_templates_exist_in_da_and_en():
    shared = REPO_ROOT.parent / "shared" / "examples" / "journey_abandoned_cart.json"
    if shared.exists():
        assert json.loads(EXAMPLE.read_text()) == json.loads(shared.read_text())
    for key in ("abandoned_cart/reminder", "abandoned_cart/free_shipping"):
        assert {"da", "en"} <= set(file_locales(key=key, channel="email")), key
    free = REPO_ROOT / "templates/email/abandoned_cart/free_shipping"
    assert "fri fragt" in (free / "da/body.txt").read_text().lower()
    assert "free shipping" in (free / "en/body.txt").read_text().lower()
