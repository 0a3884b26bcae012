"""`rejse up` prints the console's address beside the API's."""

from __future__ import annotations

from types import SimpleNamespace

from rejse import cli


def test_rejse_up_prints_the_console_address():
    started = SimpleNamespace(
        api_url="http://127.0.0.1:8000",
        temporal_ui_url=None,
        temporal_address="127.0.0.1:7233",
        new_admin_key=None,
    )
    with cli.console.capture() as captured:
        cli._print_started(started)
    out = captured.get()
    assert "http://127.0.0.1:8000/console" in out
    assert out.index("/docs") < out.index("/console")
