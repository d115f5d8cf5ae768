"""CONNECT tunnels in StdlibTransport against real peers on 127.0.0.1 playing the proxy: one
that tunnels (and checks the credentials), and broken or hostile ones. Every failure names the
proxy, never its credentials, and the whole-exchange deadline covers the CONNECT."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx2
import pytest

from tests import hostile_servers as hs
from wxtoken.transport import StdlibTransport
from wxtoken.transport.errors import ProxyAuthRequired, ProxyFailure, ProxyForbidden
from wxtoken.transport.proxy import Proxy

SECRET = "tunnel-pw-7d1e0c"


def tunnelling(seen: list[hs.Request], status: bytes = b"200 Connection established") -> Any:
    """A proxy: answers CONNECT (checking Basic u:SECRET when status is 200), then serves the
    echo app itself on the tunnel, as the origin would."""

    def handle(peer: hs.Peer) -> None:
        req = peer.read_request()
        if req is None:
            return
        seen.append(req)
        wanted = "Basic " + base64.b64encode(f"u:{SECRET}".encode()).decode()
        if status.startswith(b"200") and req.headers.get("proxy-authorization") != wanted:
            peer.send(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            return
        peer.send(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        if status.startswith(b"200"):
            hs.app(hs.echo)(peer)

    return handle


def through(server: hs.Server, password: str | None = SECRET, **kw: Any) -> StdlibTransport:
    proxy = Proxy("127.0.0.1", server.port, "HTTPS_PROXY", "u", password)
    return StdlibTransport(proxy=lambda origin: proxy, **kw)


def get(t: StdlibTransport, url: str = "http://webex.example:8080/v1/x") -> httpx2.Response:
    response = t.handle_request(httpx2.Request("GET", url))
    response.read()
    return response


def test_a_tunnel_carries_requests_with_the_credentials_on_connect_only() -> None:
    seen: list[hs.Request] = []
    with hs.serving(tunnelling(seen)) as server, through(server) as t:
        # (the peer counts the CONNECT as its first request)
        assert get(t).text == "GET /v1/x conn=0 n=2 len=0"
        assert get(t).text == "GET /v1/x conn=0 n=3 len=0"  # the tunnel is kept alive
    assert [(r.method, r.target) for r in seen] == [("CONNECT", "webex.example:8080")]
    assert seen[0].headers["host"] == "webex.example:8080"


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (b"403 Forbidden", ProxyForbidden, "refuses webex.example (403)"),
        (b"502 Bad Gateway", ProxyFailure, "answered 502 when asked for webex.example:8080"),
    ],
)
def test_refusals_are_named(status: bytes, kind: type[Exception], words: str) -> None:
    with hs.serving(tunnelling([], status)) as server, through(server) as t:
        with pytest.raises(kind) as caught:
            get(t)
    assert f"the proxy http://127.0.0.1:{server.port} {words}" in str(caught.value)


def test_wrong_or_missing_credentials_are_407_and_never_shown() -> None:
    with hs.serving(tunnelling([])) as server:
        with through(server, password="wrong-pw-55") as t, pytest.raises(ProxyAuthRequired) as e:
            get(t)
        assert "refused the credentials it was given (407)" in str(e.value)
        assert "wrong-pw-55" not in str(e.value) + repr(e.value)
        with through(server, password=None) as t, pytest.raises(ProxyAuthRequired) as e:
            get(t)
        assert "no password was given for its user" in str(e.value)


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        (hs.closes_without_answer, "closed the connection instead of a tunnel"),
        (hs.echoes_request_as_status, "did not answer CONNECT in HTTP"),
    ],
)
def test_broken_proxies(handler: hs.Handler, words: str) -> None:
    with hs.serving(handler) as server, through(server) as t:
        with pytest.raises(ProxyFailure) as caught:
            get(t)
    assert words in str(caught.value) and SECRET not in str(caught.value)


def test_bytes_after_the_proxys_answer_are_refused() -> None:
    """Anything past a 2xx would be read as the server's TLS handshake."""

    def eager(peer: hs.Peer) -> None:
        peer.read_request()
        peer.send(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi!")
        peer.wait_closed(5)

    with hs.serving(eager) as server, through(server) as t:
        with pytest.raises(ProxyFailure, match="sent data before the tunnel was used"):
            get(t)


@pytest.mark.parametrize("handler", [hs.never_answers, hs.trickles_head])
def test_the_deadline_covers_the_connect(handler: hs.Handler) -> None:
    with hs.serving(handler) as server, through(server, deadline=1.5) as t:
        start = time.monotonic()
        with pytest.raises(ProxyFailure) as caught:
            get(t, "https://webex.example/v1/x")
        took = time.monotonic() - start
    assert 1.4 <= took <= 2.5, took
    assert f"the proxy http://127.0.0.1:{server.port} gave no tunnel to webex.example:443" in str(
        caught.value
    )


def test_an_unreachable_proxy_is_named() -> None:
    with hs.serving(hs.silent) as server:
        port = server.port
    with through(server) as t, pytest.raises(ProxyFailure) as caught:
        get(t)
    assert f"cannot connect to the proxy http://127.0.0.1:{port}" in str(caught.value)
