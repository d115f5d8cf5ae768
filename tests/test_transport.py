"""StdlibTransport against real servers on 127.0.0.1: keep-alive, framing, TLS, hostile peers.

Reuse and closing are proven from the server's side (connections it accepted, requests each
carried, whether it saw the client close), not from the transport's internals. Deadline cases
assert the exception type, that it fired within deadline + 1 s, and that the server saw the
socket closed.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests import hostile_servers as hs
from tests.conftest import (
    Emulator,
    assert_no_secret,
    canary,
    free_port,
    self_signed_cert,
    wait_until,
)
from wxtoken.transport import DEADLINE_EXTENSION, DeadlineExceeded, StdlibTransport
from wxtoken.transport.errors import CertificateRejected


@pytest.fixture
def transport() -> Iterator[StdlibTransport]:
    with StdlibTransport() as t:
        yield t


def send(t: StdlibTransport, url: str, method: str = "GET", **kw: Any) -> httpx2.Response:
    """One exchange, body read to the end (so a keep-alive connection goes back to the pool)."""
    r = t.handle_request(httpx2.Request(method, url, **kw))
    r.read()
    return r


# --- ordinary exchanges ---------------------------------------------------------------------


def test_get_and_post_share_one_keep_alive_connection(transport: StdlibTransport) -> None:
    with hs.serving(hs.app(hs.echo)) as srv:
        for i in range(3):
            r = send(transport, f"{srv.url}/get?i={i}", headers={"X-Id": f"g{i}"})
            assert r.status_code == 200 and r.text == f"GET /get?i={i} conn=0 n={2 * i + 1} len=0"
            assert r.headers["x-echo-id"] == f"g{i}"
            r = send(transport, f"{srv.url}/post", "POST", data={"a": "1" * 100})
            assert r.text == f"POST /post conn=0 n={2 * i + 2} len=102"
        assert srv.accepted == 1


def test_works_behind_httpx2_client() -> None:
    with hs.serving(hs.app(hs.echo)) as srv, httpx2.Client(transport=StdlibTransport()) as c:
        assert c.get(f"{srv.url}/a").text == "GET /a conn=0 n=1 len=0"
        r = c.post(f"{srv.url}/b", json={"k": "v"})
        assert r.text == "POST /b conn=0 n=2 len=9" and r.http_version == "HTTP/1.1"
        assert r.reason_phrase == "Reason"
        assert srv.accepted == 1


def test_chunked_response_then_reuse(transport: StdlibTransport) -> None:
    parts = [b"first ", b"x" * 70000, b" last"]
    with hs.serving(hs.app(lambda req, peer: hs.Reply(chunks=parts))) as srv:
        for _ in range(2):  # the trailer is consumed: the second response parses cleanly
            assert send(transport, srv.url).content == b"".join(parts)
        assert srv.accepted == 1


def test_gzip_body_is_decoded_by_httpx2_response(transport: StdlibTransport) -> None:
    with hs.serving(hs.app(hs.gzipped)) as srv:
        r = transport.handle_request(httpx2.Request("GET", srv.url))
        raw = b"".join(r.iter_raw())  # the transport passes the compressed bytes up ...
        assert len(raw) < 200
        r = send(transport, srv.url)  # ... and httpx2's Response decodes them
        assert r.content == b"squeezed " * 1000
        with httpx2.Client(transport=transport) as c:
            assert c.get(srv.url).text == "squeezed " * 1000
        assert srv.accepted == 1


def test_head_reads_no_body_and_keeps_the_connection(transport: StdlibTransport) -> None:
    with hs.serving(hs.app(lambda req, peer: hs.Reply(body=b"0123456789"))) as srv:
        r = send(transport, srv.url, "HEAD")
        assert r.headers["content-length"] == "10" and r.content == b""
        assert send(transport, srv.url).content == b"0123456789"
        assert srv.accepted == 1


def test_http10_peer_body_until_close(transport: StdlibTransport) -> None:
    reply = hs.Reply(body=b"old school", version="HTTP/1.0", length=False)
    with hs.serving(hs.app(lambda req, peer: reply)) as srv:
        for _ in range(2):
            r = send(transport, srv.url)
            assert r.content == b"old school" and r.http_version == "HTTP/1.0"
        assert srv.accepted == 2  # read to EOF: never reused


@pytest.mark.parametrize("keep_open", [False, True], ids=["server-closes", "lax-server"])
def test_connection_close_from_either_side(transport: StdlibTransport, keep_open: bool) -> None:
    says_close = hs.app(lambda req, peer: hs.Reply(body=b"bye", close=True), keep_open)
    with hs.serving(says_close) as srv:
        send(transport, srv.url)
        send(transport, srv.url)
        assert srv.accepted == 2
        assert srv.peers[0].client_closed.wait(2) or not keep_open  # lax: only we can close it
    with hs.serving(hs.app(hs.echo, keep_open)) as srv:
        send(transport, srv.url, headers={"Connection": "close"})
        send(transport, srv.url)
        assert srv.accepted == 2
        assert srv.peers[0].client_closed.wait(2) or not keep_open  # lax: only we can close it


def test_informational_responses_are_skipped_not_returned(transport: StdlibTransport) -> None:
    """A 103 taken for the answer would leave the real one to be read by the next request."""
    with hs.serving(hs.early_hints_first) as srv:
        for i in range(3):
            r = send(transport, f"{srv.url}/{i}")
            assert r.status_code == 200 and r.text == f"GET /{i} conn=0 n={i + 1} len=0"

    def switches(peer: hs.Peer) -> None:
        peer.read_request()
        peer.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        peer.wait_closed(10)

    with hs.serving(switches) as srv:
        exc = fails_within(transport, srv.url, httpx2.RemoteProtocolError, 0.0)
        assert "switched protocols" in str(exc) and srv.peers[0].client_closed.wait(2)


def test_repeated_headers_and_raw_bytes_kept(transport: StdlibTransport) -> None:
    headers = [("Set-Cookie", "a=1"), ("X-Odd", "caf\xe9"), ("Set-Cookie", "b=2")]
    with hs.serving(hs.app(lambda req, peer: hs.Reply(headers=headers))) as srv:
        r = send(transport, srv.url)
        assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert (b"X-Odd", "caf\xe9".encode("latin-1")) in r.headers.raw


def test_request_bodies_streamed_empty_and_host(transport: StdlibTransport) -> None:
    seen: list[hs.Request] = []

    def record(req: hs.Request, peer: hs.Peer) -> hs.Reply:
        seen.append(req)
        return hs.echo(req, peer)

    with hs.serving(hs.app(record)) as srv:
        send(transport, srv.url, "PUT", content=iter([b"part one, ", b"", b"part two"]))
        send(transport, srv.url, "POST")
        send(transport, srv.url, "GET")
        assert srv.accepted == 1
    streamed, empty_post, get = seen
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert streamed.body == b"part one, part two"
    assert empty_post.headers["content-length"] == "0"
    assert "content-length" not in get.headers and "transfer-encoding" not in get.headers
    assert get.headers["host"] == f"127.0.0.1:{srv.port}"


def test_ipv6_loopback_literal(transport: StdlibTransport) -> None:
    try:
        server = hs.serving(hs.app(hs.echo), host="::1")
        srv = server.__enter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert send(transport, f"{srv.url}/six").text == "GET /six conn=0 n=1 len=0"
        assert send(transport, f"{srv.url}/six").text == "GET /six conn=0 n=2 len=0"
    finally:
        server.__exit__(None, None, None)
    exc = fails_within(transport, srv.url, httpx2.ConnectError, 0.0)
    assert f"http://[::1]:{srv.port}" in str(exc)


# --- the pool: stale connections, expiry, early close ---------------------------------------


def test_idle_connection_closed_by_server_is_replaced_silently(transport: StdlibTransport) -> None:
    with hs.serving(hs.answers_once_then_closes) as srv:
        assert send(transport, srv.url).text == "GET / conn=0 n=1 len=0"
        assert srv.peers[0].finished.wait(5)  # the server closed the idle connection ...
        time.sleep(0.05)  # ... and its FIN crosses loopback
        assert send(transport, srv.url).text == "GET / conn=1 n=1 len=0"
        assert [p.requests for p in srv.peers] == [1, 1]


def test_stray_bytes_on_an_idle_connection_discard_it(transport: StdlibTransport) -> None:
    with hs.serving(hs.answers_then_sends_garbage) as srv:
        assert send(transport, srv.url).text == "GET / conn=0 n=1 len=0"
        assert srv.peers[0].milestone.wait(5)  # an unsolicited "response" on the idle connection
        time.sleep(0.05)
        assert send(transport, srv.url).text == "GET / conn=1 n=1 len=0"
        assert srv.peers[0].client_closed.wait(2)


def test_idle_expiry_on_the_injected_clock() -> None:
    now = [1000.0]
    with (
        hs.serving(hs.app(hs.echo)) as srv,
        StdlibTransport(idle_expiry=4.0, clock=lambda: now[0]) as t,
    ):
        send(t, srv.url)
        now[0] += 3.9
        assert "conn=0" in send(t, srv.url).text
        now[0] += 4.0
        assert "conn=1" in send(t, srv.url).text
        assert srv.peers[0].client_closed.wait(2)


def test_closing_a_partly_read_response_closes_its_connection(transport: StdlibTransport) -> None:
    big = b"y" * 1_000_000
    with hs.serving(hs.app(lambda req, peer: hs.Reply(body=big))) as srv:
        r = transport.handle_request(httpx2.Request("GET", srv.url))
        first = next(r.iter_raw())
        assert 0 < len(first) < len(big)
        r.close()
        assert srv.peers[0].client_closed.wait(2)
        assert send(transport, srv.url).content == big
        assert srv.accepted == 2


def test_max_idle_per_origin_bounds_the_pool() -> None:
    with hs.serving(hs.app(hs.echo)) as srv, StdlibTransport(max_idle_per_origin=1) as t:
        open_now = [t.handle_request(httpx2.Request("GET", srv.url)) for _ in range(3)]
        for r in open_now:
            r.read()
        assert srv.accepted == 3
        assert wait_until(lambda: sum(p.client_closed.is_set() for p in srv.peers) == 2)
        send(t, srv.url)  # on the one kept idle
        assert srv.accepted == 3


# --- hostile servers and the deadline -------------------------------------------------------


def fails_within(
    t: StdlibTransport, url: str, expected: type[Exception], limit: float, **kw: Any
) -> httpx2.TransportError:
    """One exchange (body included) that must fail with exactly `expected`, after `limit` s (the
    timer that should fire, not an earlier one) and within limit + 1 s."""
    request = httpx2.Request("GET", url, **kw)
    start = time.monotonic()
    with pytest.raises(httpx2.TransportError) as info:
        t.handle_request(request).read()
    elapsed = time.monotonic() - start
    assert type(info.value) is expected, repr(info.value)
    assert limit - 0.1 <= elapsed <= limit + 1.0, f"{expected.__name__} after {elapsed:.2f} s"
    assert info.value.request is request
    return info.value


@pytest.mark.parametrize(
    ("handler", "deadline", "read_timeout", "expected", "phase"),
    [
        (hs.never_answers, 0.5, 10.0, DeadlineExceeded, "status line"),
        (hs.never_answers, 10.0, 0.5, httpx2.ReadTimeout, "status line"),
        # A line or byte a second never trips the 1.5 s read timeout; only the deadline stops it.
        (hs.trickles_head, 2.2, 1.5, DeadlineExceeded, "status line and headers"),
        (hs.trickles_body, 2.2, 1.5, DeadlineExceeded, "body"),
        (hs.stalls_after_head, 0.5, 10.0, DeadlineExceeded, "body"),
        (hs.stalls_after_head, 10.0, 0.5, httpx2.ReadTimeout, "body"),
    ],
    ids=[
        "never-answers-deadline",
        "never-answers-read-timeout",
        "trickles-headers",
        "trickles-body",
        "stalls-after-head-deadline",
        "stalls-after-head-read-timeout",
    ],
)
def test_hostile_server_is_cut_off_and_its_socket_closed(
    handler: hs.Handler, deadline: float, read_timeout: float, expected: type[Exception], phase: str
) -> None:
    with (
        hs.serving(handler) as srv,
        StdlibTransport(deadline=deadline, read_timeout=read_timeout) as t,
    ):
        limit = deadline if expected is DeadlineExceeded else read_timeout
        exc = fails_within(t, srv.url, expected, limit)
        assert phase in str(exc) and f"127.0.0.1:{srv.port}" in str(exc)
        if expected is DeadlineExceeded:
            assert "whole-exchange deadline passed" in str(exc)
        assert srv.peers[0].client_closed.wait(2), "the server did not see the socket closed"


def test_tls_handshake_against_a_silent_server_is_bounded() -> None:
    with hs.serving(hs.silent) as srv:
        url = srv.url.replace("http://", "https://")
        with StdlibTransport(deadline=0.5) as t:
            exc = fails_within(t, url, DeadlineExceeded, 0.5)
            assert "while doing the TLS handshake" in str(exc)
        with StdlibTransport(connect_timeout=0.5) as t:
            fails_within(t, url, httpx2.ConnectTimeout, 0.5)
        assert all(p.client_closed.wait(2) for p in srv.peers) and srv.accepted == 2


def test_connect_to_a_full_backlog_times_out() -> None:
    listener = hs.Server(hs.silent, backlog=0)  # never started: nobody accepts
    held = []
    try:
        for _ in range(16):  # fill the accept queue until a connect hangs
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", listener.port))
            except TimeoutError:
                probe.close()
                break
            held.append(probe)
        else:
            pytest.skip("this kernel completes connections beyond the backlog")
        with StdlibTransport(deadline=0.5) as t:
            exc = fails_within(t, listener.url, DeadlineExceeded, 0.5)
            assert "while connecting" in str(exc)
        with StdlibTransport(connect_timeout=0.5) as t:
            fails_within(t, listener.url, httpx2.ConnectTimeout, 0.5)
    finally:
        for probe in held:
            probe.close()
        listener.close()


def test_deadline_holds_for_a_body_already_buffered() -> None:
    """Bytes in the buffer need no system call; reading them late still counts as late."""
    now = [1000.0]
    with (
        hs.serving(hs.app(lambda req, peer: hs.Reply(body=b"z" * 100))) as srv,
        StdlibTransport(deadline=5.0, clock=lambda: now[0]) as t,
    ):
        request = httpx2.Request("GET", srv.url)
        r = t.handle_request(request)
        now[0] += 5.0
        with pytest.raises(DeadlineExceeded, match="while reading the body") as info:
            r.read()
        assert info.value.request is request
        assert srv.peers[0].client_closed.wait(2)


def test_request_deadline_extension_wins_over_the_default() -> None:
    with hs.serving(hs.answers_after(1.0)) as srv:
        with StdlibTransport(deadline=30.0) as t:
            at = time.monotonic() + 0.5
            fails_within(t, srv.url, DeadlineExceeded, 0.5, extensions={DEADLINE_EXTENSION: at})
        with StdlibTransport(deadline=0.3) as t:
            later = {DEADLINE_EXTENSION: time.monotonic() + 10}
            r = t.handle_request(httpx2.Request("GET", srv.url, extensions=later))
            assert r.read().startswith(b"GET /")
            passed = {DEADLINE_EXTENSION: time.monotonic() - 1}
            fails_within(t, srv.url, DeadlineExceeded, 0.0, extensions=passed)
            assert srv.accepted == 2 and not srv.peers[1].client_closed.wait(0.2)  # not spent
            with pytest.raises(TypeError):
                send(t, srv.url, extensions={DEADLINE_EXTENSION: float("inf")})


def test_httpx2_client_timeouts_can_only_shorten_ours() -> None:
    with hs.serving(hs.never_answers) as srv:
        with httpx2.Client(transport=StdlibTransport(read_timeout=30.0), timeout=0.5) as c:
            start = time.monotonic()
            with pytest.raises(httpx2.ReadTimeout):
                c.get(srv.url)
            assert time.monotonic() - start < 1.5
        with httpx2.Client(transport=StdlibTransport(read_timeout=0.5), timeout=None) as c:
            with pytest.raises(httpx2.ReadTimeout):
                c.get(srv.url)


# --- broken peers -----------------------------------------------------------------------------


def test_connect_refused(transport: StdlibTransport) -> None:
    exc = fails_within(transport, f"http://127.0.0.1:{free_port()}/", httpx2.ConnectError, 0.0)
    assert "network error while connecting" in str(exc)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_server_closing_mid_body(transport: StdlibTransport, chunked: bool) -> None:
    with hs.serving(hs.closes_mid_body(chunked)) as srv:
        exc = fails_within(transport, srv.url, httpx2.RemoteProtocolError, 0.0)
        assert "before the response body was complete" in str(exc)


def test_a_request_is_never_sent_twice(transport: StdlibTransport) -> None:
    with hs.serving(hs.closes_without_answer) as srv:
        exc = fails_within(transport, srv.url, httpx2.RemoteProtocolError, 0.0)
        assert "without answering" in str(exc)
        assert srv.accepted == 1 and srv.peers[0].requests == 1

    def answers_once_then_drops_the_next(peer: hs.Peer) -> None:
        req = peer.read_request()
        assert req is not None
        peer.send(hs.encode(hs.echo(req, peer), req.method))
        peer.read_request()  # read it, then vanish: the reply may or may not have been acted on

    with hs.serving(answers_once_then_drops_the_next) as srv:
        send(transport, srv.url)
        fails_within(transport, srv.url, httpx2.RemoteProtocolError, 0.0, content=b"once")
        time.sleep(0.2)
        assert srv.accepted == 1 and srv.peers[0].requests == 2


def test_invalid_requests_are_refused_before_any_connection(transport: StdlibTransport) -> None:
    secret = canary("AT")
    with hs.serving(hs.app(hs.echo)) as srv:
        for bad in ({"X-Evil": f"{secret}\r\nInjected: 1"}, {"Bad Name": "v"}):
            with pytest.raises(httpx2.LocalProtocolError) as info:
                transport.handle_request(httpx2.Request("GET", srv.url, headers=bad))
            assert_no_secret([str(info.value)], [secret])
        with pytest.raises(httpx2.UnsupportedProtocol):
            transport.handle_request(httpx2.Request("GET", f"ftp://127.0.0.1:{srv.port}/"))
        time.sleep(0.1)
        assert srv.accepted == 0


def test_no_secret_in_any_error(transport: StdlibTransport) -> None:
    secrets = [canary("RT"), canary("CS"), canary("AT"), canary("CODE")]
    rt, cs, at, code = secrets
    texts: list[str] = []

    def attempt(t: StdlibTransport, url: str) -> None:
        request = httpx2.Request(
            "POST",
            f"{url}/v1/access_token?code={code}",
            data={"refresh_token": rt, "client_secret": cs},
            headers={"Authorization": f"Bearer {at}"},
        )
        try:
            t.handle_request(request).read()
        except httpx2.TransportError as exc:
            texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
        else:
            raise AssertionError("the exchange should have failed")

    with hs.serving(hs.echoes_request_as_status) as srv:  # our request comes back as "status"
        attempt(transport, srv.url)
    with hs.serving(hs.closes_mid_body(False)) as srv:
        attempt(transport, srv.url)
    with hs.serving(hs.never_answers) as srv, StdlibTransport(deadline=0.5) as short:
        attempt(short, srv.url)
    assert len(texts) == 9
    assert_no_secret(texts, secrets)


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[hs.Server, Path]]:
    cert, key = self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with hs.serving(hs.app(hs.echo), tls=ctx) as srv:
        yield srv, cert


def test_tls_self_signed_refused_by_default(tls_server: tuple[hs.Server, Path]) -> None:
    srv, _ = tls_server
    with StdlibTransport() as t:
        exc = fails_within(t, srv.url, CertificateRejected, 0.0)
    assert "certificate" in str(exc) and "was not accepted" in str(exc)
    assert isinstance(exc, httpx2.ConnectError) and "issued by '127.0.0.1'" in str(exc)


def test_tls_accepted_with_a_context_that_trusts_it(tls_server: tuple[hs.Server, Path]) -> None:
    srv, cert = tls_server
    with StdlibTransport(ssl_context=ssl.create_default_context(cafile=str(cert))) as t:
        assert send(t, srv.url).text == "GET / conn=0 n=1 len=0"
        assert send(t, srv.url).text == "GET / conn=0 n=2 len=0"


def test_tls_hostname_mismatch_refused(tls_server: tuple[hs.Server, Path]) -> None:
    srv, cert = tls_server  # the certificate names 127.0.0.1 only
    with StdlibTransport(ssl_context=ssl.create_default_context(cafile=str(cert))) as t:
        exc = fails_within(t, f"https://localhost:{srv.port}/", CertificateRejected, 0.0)
    assert "mismatch" in str(exc).lower()


def test_tls_verification_cannot_be_turned_off(tmp_path: Path) -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="cannot be turned off"):
        StdlibTransport(ssl_context=lax)
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="cannot be turned off"):
        StdlibTransport(ssl_context=lax)
    with pytest.raises(ValueError):
        StdlibTransport(deadline=0)


# --- concurrency ----------------------------------------------------------------------------


def test_sixteen_threads_share_one_transport_without_crossed_answers(figure: Any) -> None:
    threads, per_thread = 16, 200
    errors: list[str] = []
    with (
        hs.serving(hs.app(hs.echo)) as srv,
        StdlibTransport(max_idle_per_origin=threads) as t,
    ):

        def worker(n: int) -> None:
            for i in range(per_thread):
                rid = f"{n}-{i}"
                r = send(t, f"{srv.url}/r/{rid}", headers={"X-Id": rid})
                if r.headers["x-echo-id"] != rid or not r.text.startswith(f"GET /r/{rid} "):
                    errors.append(f"{rid} got {r.headers['x-echo-id']}")

        start = time.monotonic()
        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        elapsed = time.monotonic() - start
        assert errors == []
        assert sum(p.requests for p in srv.peers) == threads * per_thread
        assert srv.accepted <= threads and srv.max_open <= threads
    figure(
        f"transport concurrency: {threads} threads x {per_thread} requests, 0 crossed answers, "
        f"{srv.accepted} connections, {threads * per_thread / elapsed:,.0f} requests/s"
    )


# --- the emulator ---------------------------------------------------------------------------


def sign_in(emu: Emulator, c: httpx2.Client) -> httpx2.Request:
    """The code flow through `c`; returns a prebuilt refresh request for the new grant."""
    emu.policy(auto_approve=True)
    r = c.get(
        f"{emu.base_url}/v1/authorize",
        params={
            "client_id": emu.client_id,
            "response_type": "code",
            "redirect_uri": emu.redirect_uri,
            "scope": "spark:kms",
            "state": "s",
        },
    )
    assert r.status_code == 302  # returned, not followed
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    form = {"client_id": emu.client_id, "client_secret": emu.client_secret}
    exchange = {"grant_type": "authorization_code", "redirect_uri": emu.redirect_uri}
    r = c.post(f"{emu.base_url}/v1/access_token", data=dict(form, code=code, **exchange))
    assert r.status_code == 200, r.text
    return httpx2.Request(
        "POST",
        f"{emu.base_url}/v1/access_token",
        data=dict(form, grant_type="refresh_token", refresh_token=r.json()["refresh_token"]),
    )


def grants_since(emu: Emulator, mark: int) -> list[str]:
    return [e["grant_type"] for e in emu.ledger(mark) if e.get("grant_type")]


def test_code_flow_and_refresh_against_the_emulator(emu: Emulator) -> None:
    mark = emu.mark()
    with StdlibTransport() as t, httpx2.Client(transport=t) as c:
        refresh = sign_in(emu, c)
        for _ in range(3):
            answer = t.handle_request(refresh)
            answer.read()
            assert answer.status_code == 200 and "access_token" in answer.json()
    assert grants_since(emu, mark) == ["authorization_code"] + ["refresh_token"] * 3


def test_emulator_faults_trickle_and_drop_after_commit(emu: Emulator) -> None:
    with StdlibTransport(deadline=1.5, read_timeout=1.0) as t, httpx2.Client(transport=t) as c:
        refresh = sign_in(emu, c)
        emu.fault("trickle", delay=0.3)  # a body byte every 0.3 s: no read ever times out
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="while reading the body"):
            t.handle_request(refresh).read()
        assert 1.4 <= time.monotonic() - start <= 2.5
        mark = emu.mark()
        emu.fault("drop_after_commit")  # Webex refreshed, then the connection died
        with pytest.raises(httpx2.RemoteProtocolError):
            t.handle_request(refresh).read()
        assert grants_since(emu, mark) == ["refresh_token"]  # sent once, not resent
        assert t.handle_request(refresh).read().startswith(b"{")


def test_closed_transport_refuses_requests() -> None:
    t = StdlibTransport()
    t.close()
    with pytest.raises(RuntimeError):
        t.handle_request(httpx2.Request("GET", "http://127.0.0.1:1/"))
