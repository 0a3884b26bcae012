"""`rejse.outbound` against a real loopback HTTP server: how each answer (and a closed port, a
timeout) is classified, Retry-After in both forms, and the Temporal form of each class."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from rejse.outbound import (
    OutboundError,
    RateLimited,
    Rejected,
    Transient,
    application_error,
    check,
    parse_retry_after,
    request,
)

DATE_AHEAD = 120  # seconds: the HTTP-date Retry-After points this far ahead


class Answers(BaseHTTPRequestHandler):
    """`/<status>` answers that status; `/429-date` a 429 with an HTTP-date Retry-After;
    `/slow` answers after a second."""

    def _answer(self) -> None:
        name = self.path.strip("/")
        if name == "slow":
            time.sleep(1)
            name = "200"
        status = int(name.split("-")[0])
        body = b"" if status == 204 else f'{{"error": "answer {status}"}}'.encode()
        self.send_response(status)
        if name == "429":
            self.send_header("Retry-After", "7")
        elif name == "429-date":
            ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=DATE_AHEAD)
            self.send_header("Retry-After", format_datetime(ahead, usegmt=True))
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        # `/slow` answers a client that has given up waiting
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5) as c:
        yield c


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on leaving: nothing listens there


@pytest.mark.parametrize("status", [200, 204])
def test_2xx_is_returned(client: httpx.Client, status: int) -> None:
    response = request(client, "POST", f"/{status}", what="test call", json={"a": 1})
    assert response.status_code == status


@pytest.mark.parametrize("status", [408, 500, 503])
def test_5xx_and_408_are_transient(client: httpx.Client, status: int) -> None:
    with pytest.raises(Transient) as err:
        request(client, "POST", f"/{status}", what="test call")
    assert type(err.value) is Transient
    assert err.value.status == status
    assert err.value.what == "test call"
    assert str(err.value) == f"test call: {status}"


@pytest.mark.parametrize("status", [400, 404])
def test_other_4xx_is_rejected_with_the_answer_as_detail(client: httpx.Client, status: int) -> None:
    with pytest.raises(Rejected) as err:
        request(client, "GET", f"/{status}", what="test call")
    assert not isinstance(err.value, Transient)
    assert err.value.status == status
    assert err.value.detail == f'{{"error": "answer {status}"}}'
    assert "answer" not in str(err.value)  # the answer's text stays out of the message


def test_429_with_delay_seconds(client: httpx.Client) -> None:
    with pytest.raises(RateLimited) as err:
        request(client, "POST", "/429", what="test call")
    assert isinstance(err.value, Transient)
    assert err.value.status == 429
    assert err.value.retry_after == 7


def test_429_with_http_date(client: httpx.Client) -> None:
    with pytest.raises(RateLimited) as err:
        request(client, "POST", "/429-date", what="test call")
    # the date has one-second resolution and a little time passes on the way
    assert DATE_AHEAD - 5 <= err.value.retry_after <= DATE_AHEAD


def test_closed_port_is_transient() -> None:
    with httpx.Client(timeout=5) as c, pytest.raises(Transient) as err:
        request(c, "POST", f"http://127.0.0.1:{closed_port()}/", what="test call")
    assert err.value.status is None
    assert str(err.value) == "test call: ConnectError"


def test_timeout_is_transient(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=0.2) as c, pytest.raises(Transient) as err:
        request(c, "GET", "/slow", what="test call")
    assert err.value.status is None
    assert "Timeout" in str(err.value)


def test_check_classifies_a_response_got_elsewhere(client: httpx.Client) -> None:
    assert check(client.get("/200"), what="test call").status_code == 200
    with pytest.raises(Rejected):
        check(client.get("/404"), what="test call")


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Mon, 23 Nov 2026 06:01:00 GMT", now=now) == 60
    assert parse_retry_after("Mon, 23 Nov 2026 05:59:00 GMT", now=now) == 0  # already past
    assert parse_retry_after(None) == 30
    assert parse_retry_after("soon") == 30
    assert parse_retry_after("", default=5) == 5


def test_application_error_forms() -> None:
    rejected = application_error(Rejected("crm", status=400, detail="x"), kind="Crm")
    assert (rejected.type, rejected.non_retryable) == ("CrmRejected", True)
    assert rejected.next_retry_delay is None
    assert rejected.message == "crm: 400"

    transient = application_error(Transient("crm", status=503), kind="Crm")
    assert (transient.type, transient.non_retryable) == ("CrmTransient", False)
    assert transient.next_retry_delay is None

    limited = application_error(RateLimited("notify", retry_after=7), kind="Notify")
    assert (limited.type, limited.non_retryable) == ("NotifyTransient", False)
    assert limited.next_retry_delay == dt.timedelta(seconds=7)
    past = application_error(RateLimited("notify", retry_after=0), kind="Notify")
    assert past.next_retry_delay == dt.timedelta(seconds=1)

    assert application_error(OutboundError("x"), kind="Crm").type == "CrmTransient"
