"""Outbound calls to user-given URLs never reach this machine or private networks: literal
addresses in every notation, IPv4 inside IPv6, names that resolve to such addresses (every
address checked), and the call goes to the address that was checked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from rejse.netguard import BlockedAddress, Unresolvable, literal_problem, pin

REFUSED = {
    "http://127.0.0.1:8080/hook": "loopback",
    "http://127.1/": "loopback",
    "http://0x7f.0.0.1/": "loopback",
    "http://2130706433/": "loopback",
    "http://[::1]/": "loopback",
    "http://[::ffff:127.0.0.1]/": "loopback (IPv4 inside IPv6)",
    "http://[::ffff:a00:1]/": "private (IPv4 inside IPv6)",
    "http://[2002:7f00:1::]/": "loopback (IPv4 inside IPv6)",
    "http://[64:ff9b::a9fe:a9fe]/": "link-local (IPv4 inside IPv6)",
    "http://169.254.169.254/latest/meta-data": "link-local",
    "http://[fe80::1]/": "link-local",
    "http://10.1.2.3/": "private",
    "http://172.16.0.1/": "private",
    "http://192.168.1.1/": "private",
    "http://[fd00::1]/": "private",
    "http://100.64.0.1/": "not globally routable",
    "http://0.0.0.0/": "unspecified",
    "http://[::]/": "unspecified",
    "http://224.0.0.1/": "multicast",
    "http://[ff02::1]/": "multicast",
    "http://240.0.0.1/": "reserved",
    "http://localhost:9000/": "this machine (localhost)",
    "https://api.localhost/": "this machine (localhost)",
}


@pytest.mark.parametrize(("url", "kind"), list(REFUSED.items()), ids=list(REFUSED))
def test_literal_private_addresses_are_refused(url, kind):
    problem = literal_problem(url)
    assert problem is not None, url
    assert kind in problem


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/h", "http://93.184.216.34/x", "https://[2606:4700::1111]/"],
)
def test_public_addresses_and_names_pass_the_static_check(url):
    assert literal_problem(url) is None


def resolver(*addresses: str):
    """A stand-in for DNS (no resolver runs in tests): answers with `addresses`."""

    def getaddrinfo(host, port, type=0):
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return getaddrinfo


def test_a_name_is_pinned_to_its_checked_address_keeping_host_and_sni():
    pinned = pin("https://hooks.example.com:8443/h?x=1", resolve=resolver("93.184.216.34"))
    assert pinned.url == "https://93.184.216.34:8443/h?x=1"
    assert pinned.headers == {"Host": "hooks.example.com:8443"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}


@pytest.mark.parametrize(
    "answer",
    [("10.0.0.5",), ("93.184.216.34", "127.0.0.1"), ("::ffff:192.168.0.1",), ("fe80::1",)],
)
def test_a_name_resolving_to_any_refused_address_is_refused(answer):
    with pytest.raises(BlockedAddress):
        pin("https://hooks.example.com/h", resolve=resolver(*answer))


def test_an_unresolvable_name_is_worth_a_retry_not_a_refusal():
    def fails(host, port, type=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(Unresolvable):
        pin("https://nowhere.example/h", resolve=fails)


@contextmanager
def receiver() -> Iterator[tuple[int, list[str]]]:
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            hosts.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, hosts
    finally:
        server.shutdown()


def test_localhost_by_name_is_refused_and_allowed_only_when_private_targets_are():
    first = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)[0][4][0]
    if first != "127.0.0.1":
        pytest.skip(f"localhost resolves to {first} first here; the receiver listens on IPv4")
    with receiver() as (port, hosts):
        url = f"http://localhost:{port}/hook"
        with pytest.raises(BlockedAddress):
            pin(url)
        pinned = pin(url, allow_private=True)  # real DNS (the hosts file)
        assert pinned.url == f"http://127.0.0.1:{port}/hook"
        r = httpx.post(pinned.url, content=b"{}", headers=pinned.headers)
        assert r.status_code == 204
    assert hosts == [f"localhost:{port}"]  # the receiver still sees the name it was given
