"""tests.servers.serve: the app answers over real HTTP inside the block, and nothing listens on
its port once the block is over (no server thread left behind between tests)."""

from __future__ import annotations

import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.servers import serve


def _app() -> Starlette:
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("hej"))])


def test_serve_answers_over_http_and_stops_after_the_block():
    with serve(_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url, timeout=5).text == "hej"
    assert not any(t.name == "uvicorn" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)


def test_serve_stops_the_server_when_the_block_raises():
    with pytest.raises(RuntimeError), serve(_app()) as url:
        raise RuntimeError("the test failed")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
