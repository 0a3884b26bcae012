"""The embedded Temporal's command line (the e2e tests run it for real)."""

from itertools import pairwise
from pathlib import Path

from rejse import devserver
from rejse.settings import Settings
from rejse.temporal import SEARCH_ATTRIBUTES


def test_search_attribute_names_agree_with_the_temporal_module():
    assert tuple(k.name for k in SEARCH_ATTRIBUTES) == devserver.SEARCH_ATTRIBUTE_NAMES


def test_command_persists_under_the_data_dir_on_the_configured_ports(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path, temporal_port=7301, temporal_ui_port=8301, temporal_namespace="shop"
    )
    cmd = devserver.command(settings)
    assert Path(cmd[0]).name == "temporal"
    assert cmd[1:3] == ["server", "start-dev"]
    pairs = dict(pairwise(cmd[3:]))
    assert pairs["--db-filename"] == str(tmp_path.resolve() / "temporal.db")
    assert pairs["--port"] == "7301"
    assert pairs["--ui-port"] == "8301"
    assert pairs["--ip"] == "127.0.0.1"
    assert pairs["--namespace"] == "shop"
    assert [v for k, v in pairwise(cmd) if k == "--search-attribute"] == [
        "RejseProfileId=Keyword",
        "RejseJourney=Keyword",
    ]
