"""The loopback listener and the HTTP edge: redirects not followed, bad certificates refused."""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import socket
import ssl
import struct
import threading
import time
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import free_port, self_signed_cert
from wxtoken.client import RetryPolicy, WebexClient
from wxtoken.errors import (
    ConsentDenied,
    InvalidClient,
    MalformedResponse,
    OAuthError,
    UsageError,
    WebexUnavailable,
    WrongKey,
)
from wxtoken.grants import ClientCredentials, RefreshGrant
from wxtoken.login import CallbackListener
from wxtoken.login.browser import browser_commands
from wxtoken.login.loopback import listen_addresses
from wxtoken.login.portowner import Holder, holder
from wxtoken.login.probe import Answer, diagnose
from wxtoken.profile import make_profile

STATE = "S" * 43


def get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, body


def finish(listener: CallbackListener, timeout: float) -> str:
    """What the login does with the listener: wait, (store tokens,) answer the tab, close."""
    code = listener.wait(timeout)
    listener.succeed("Tokens stored.")
    listener.close()
    return code


def started(port: int | None = None) -> tuple[CallbackListener, int]:
    port = port or free_port()
    listener = CallbackListener(port, "/callback", STATE)
    listener.start()
    return listener, port


def test_binds_loopback_only() -> None:
    """Only 127.0.0.1; the host's other addresses are refused."""
    listener, port = started()
    try:
        assert listener.addresses == [("127.0.0.1", port)]
        others = {
            a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        } - {"127.0.0.1"}
        for addr in others:
            with socket.socket() as s:
                s.settimeout(1)
                assert s.connect_ex((addr, port)) != 0
    finally:
        listener.close()


def test_strays_and_wrong_state_do_not_end_the_wait() -> None:
    """Favicon, other paths and methods, wrong or missing state: answered and
    ignored; the valid callback afterwards still completes."""
    listener, port = started()
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(code=finish(listener, 20)))
    waiter.start()
    strays = [
        ("GET", "/favicon.ico", 404),
        ("GET", "/", 404),
        ("HEAD", "/callback", 405),
        ("POST", "/callback", 405),
        ("OPTIONS", "/callback", 405),
        ("GET", "/callback?code=x&state=wrong", 400),
        ("GET", "/callback?code=x", 400),
        ("GET", f"/callback?code=x&state={STATE}&state={STATE}", 400),
        ("GET", "/callback?error=access_denied&state=forged", 400),
    ]
    for method, path, status in strays:
        assert get(port, path, method)[0] == status, (method, path)
    assert waiter.is_alive()
    status, body = get(port, f"/callback?code=THE-CODE&state={STATE}")
    waiter.join(10)
    assert status == 200 and "Signed in" in body
    assert result["code"] == "THE-CODE"
    assert listener.strays == len(strays)
    with socket.socket() as s:  # closed right after the valid callback
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_hostile_queries_are_escaped_and_survived() -> None:
    """Huge, malformed and script-bearing queries: no crash, nothing reflected raw."""
    listener, port = started()
    try:
        hostile = [
            "/callback?" + "a=b&" * 2000,
            "/callback?code=%ZZ&state=%",
            "/callback?code=x%00y&state=" + quote("\x00\r\n"),
            "/callback?code=" + "x" * 60000,
        ]
        for path in hostile:
            status, _ = get(port, path)
            assert status in (400, 414, 431)
        script = quote("<script>alert(1)</script>")
        status, body = get(
            port, f"/callback?error=server_error&error_description={script}&state={STATE}"
        )
        assert status == 400 and "<script>" not in body and "&lt;script&gt;" in body
        with pytest.raises(OAuthError):
            listener.wait(5)
    finally:
        listener.close()


def test_denied_consent_reported() -> None:
    """access_denied with our state ends the wait with a clear error, no token request."""
    listener, port = started()
    get(port, f"/callback?error=access_denied&state={STATE}")
    with pytest.raises(ConsentDenied):
        listener.wait(5)


def test_slowloris_does_not_block_the_callback() -> None:
    """50 idle connections; the valid callback is still served promptly."""
    listener, port = started()
    idle = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port))
            idle.append(s)
        result: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: result.update(code=finish(listener, 5)))
        waiter.start()
        t0 = time.monotonic()
        status, _ = get(port, f"/callback?code=C&state={STATE}")
        assert status == 200 and time.monotonic() - t0 < 2
        waiter.join(5)
        assert result["code"] == "C"
    finally:
        for s in idle:
            s.close()


def test_gives_up_at_the_timeout_and_closes() -> None:
    """No callback: the listener gives up at its timeout and frees the port."""
    listener, port = started()
    t0 = time.monotonic()
    with pytest.raises(OAuthError, match="within 1 s"):
        listener.wait(1)
    assert 0.9 < time.monotonic() - t0 < 3
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_redirects_are_not_followed(emulator_factory: Any) -> None:
    """A token endpoint answering 307 elsewhere: not followed, nothing reaches the target."""
    emu = emulator_factory()
    target = emulator_factory()
    emu.fault("redirect", status=307, body=f"{target.base_url}/v1/access_token")
    client = WebexClient(emu.base_url, retry=RetryPolicy(attempts=1))
    with pytest.raises(MalformedResponse, match="does not follow redirects"):
        client.exchange(
            RefreshGrant("RT-CANARY"), ClientCredentials(emu.client_id, emu.client_secret)
        )
    assert target.ledger() == []


def test_tls_verification_cannot_be_skipped(tmp_path: Path) -> None:
    """A self-signed certificate is a hard failure (exit 5), never a silent downgrade."""
    cert_file, key_file = self_signed_cert(tmp_path)
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = WebexClient(
            f"https://127.0.0.1:{server.server_address[1]}", retry=RetryPolicy(attempts=1)
        )
        with pytest.raises(WebexUnavailable) as info:
            client.exchange(RefreshGrant("x"), ClientCredentials("C", "S"))
        assert info.value.exit_code == 5
        assert hits == [], "no request was sent over the unverified connection"
    finally:
        server.shutdown()
        server.server_close()


def test_browser_commands_read_like_webbrowser() -> None:
    """$BROWSER as Python's webbrowser reads it: entries split on the path separator, %s
    replaced by the address (else appended), a trailing & dropped, nonsense skipped."""
    url = "http://127.0.0.1:1/v1/authorize?a=b&c=d"
    value = os.pathsep.join(["firefox --new-window %s", "'unbalanced", "", "lynx", "w3m %s &"])
    assert browser_commands(value, url) == [
        ["firefox", "--new-window", url],
        ["lynx", url],
        ["w3m", url],
    ]
    assert browser_commands("", url) == []


def test_localhost_listens_on_both_loopback_addresses() -> None:
    """A `localhost` redirect reaches us whichever address the browser picks for the name."""
    port = free_port()
    hosts = listen_addresses(f"http://localhost:{port}/callback")
    assert hosts == ("127.0.0.1", "::1")
    assert listen_addresses(f"http://127.0.0.1:{port}/callback") == ("127.0.0.1",)
    listener = CallbackListener(port, "/callback", STATE, hosts=hosts)
    listener.start()
    try:
        assert get(port, "/favicon.ico")[0] == 404  # 127.0.0.1 is ours too
        c = http.client.HTTPConnection("::1", port, timeout=5)
        c.request("GET", f"/callback?code=OVER-V6&state={STATE}")
        assert listener.wait(5) == "OVER-V6"
        listener.succeed("Tokens stored.")
        assert c.getresponse().status == 200
        c.close()
    finally:
        listener.close()
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as s:
            assert s.connect_ex((host, port)) != 0, f"{host} closed after the flow"


def test_a_held_address_fails_the_whole_listener_and_names_the_holder() -> None:
    with socket.socket(socket.AF_INET6) as squatter:
        squatter.bind(("::1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        listener = CallbackListener(port, "/callback", STATE, hosts=("127.0.0.1", "::1"))
        with pytest.raises(UsageError) as info:
            listener.start()
    line = info.value.one_line()
    assert f"cannot listen on [::1]:{port}" in line and f"pid {os.getpid()}" in line
    assert "--paste" in line  # our own program: pasting is a way around it
    with socket.socket() as s:  # 127.0.0.1 was not left bound
        s.bind(("127.0.0.1", port))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to listen as another user")
def test_another_users_listener_gets_no_workaround() -> None:
    """Pasting would still send the browser (and the code) to that user's program."""
    port = free_port()
    ready, told = os.pipe()
    pid = os.fork()
    if pid == 0:  # the squatter: another user, listening on [::1]:port
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", port))
            s.listen()
            os.write(told, b"1")
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        assert os.read(ready, 1) == b"1"
        listener = CallbackListener(port, "/callback", STATE, hosts=("127.0.0.1", "::1"))
        with pytest.raises(UsageError) as info:
            listener.start()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    line = info.value.one_line()
    assert "(uid 65534)" in line and "--paste" not in line and "do not sign in" in line


def test_port_holder_read_from_proc_tables(tmp_path: Path) -> None:
    """/proc/net/tcp prints each address word in host byte order; only a listener whose
    address conflicts with ours is named."""
    word = f"{struct.unpack('=I', socket.inet_aton('127.0.0.1'))[0]:08X}"
    header = "  sl  local_address rem_address st tx rx tr tm retr uid timeout inode\n"
    row = f"   0: {word}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 4321 0 77\n"
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(header + row)
    (tmp_path / "net" / "tcp6").write_text(header)
    who = holder("127.0.0.1", 8080, proc=tmp_path)
    assert who == Holder(uid=4321) and who.is_other_user
    assert who.describe() == "held by a program of user uid 4321"
    assert holder("127.0.0.1", 8081, proc=tmp_path) is None
    assert holder("::1", 8080, proc=tmp_path) is None


def answer_in_background(port: int, path: str) -> tuple[threading.Thread, dict[str, Any]]:
    got: dict[str, Any] = {}

    def fetch() -> None:
        got["status"], got["body"] = get(port, path)

    fetcher = threading.Thread(target=fetch)
    fetcher.start()
    return fetcher, got


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidClient("Webex rejected the client id or secret <b>", fix="re-enter it"), 400),
        (WebexUnavailable("Webex is failing (HTTP 503)", fix="try later"), 502),
        (WrongKey("the key file does not open this store"), 500),
    ],
)
def test_the_tab_learns_the_outcome_only_when_it_is_known(error: Any, status: int) -> None:
    """The tab that delivered the code gets its page after the exchange: the error, escaped."""
    listener, port = started()
    try:
        fetcher, got = answer_in_background(port, f"/callback?code=C&state={STATE}")
        assert listener.wait(5) == "C"
        time.sleep(0.3)
        assert fetcher.is_alive() and not got, "no page before the outcome is known"
        # Meanwhile another delivery of the same callback is not a second sign-in.
        assert get(port, f"/callback?code=C&state={STATE}")[0] == 409
        listener.fail(error)
        fetcher.join(5)
        assert got["status"] == status and "Signed in" not in got["body"]
        assert escape(error.message) in got["body"] and "<b>" not in got["body"]
    finally:
        listener.close()


def test_a_tab_left_waiting_is_told_when_wxtoken_stops() -> None:
    listener, port = started()
    fetcher, got = answer_in_background(port, f"/callback?code=C&state={STATE}")
    assert listener.wait(5) == "C"
    listener.close()  # e.g. Ctrl-C during the exchange
    fetcher.join(5)
    assert got["status"] == 500 and "see the terminal" in got["body"]


CALLBACK = "http://127.0.0.1:8765/callback"
PROFILE = make_profile(
    "rec",
    client_id="C" + "a" * 64,
    redirect_uri=CALLBACK,
    scopes="spark:kms",
)


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (400, {}, b"<html><h1>Error</h1><p>redirect_uri mismatch\x1b[2J</p></html>", "redirect"),
        (400, {}, b'{"message": "x", "errors": [{"description": "Client Id is invalid"}]}', "id"),
        (400, {}, b'{"error": "invalid_scope"}', "scopes"),
        (400, {}, b'{"message": "Service unavailable"}', None),  # names nothing we can fix
        (302, {"location": "https://idbroker.webex.com/idb/oauth2/v1/authorize?x=1"}, b"", None),
        (302, {"location": f"{CALLBACK}?code=C&state=S"}, b"", None),
        (302, {"location": f"{CALLBACK}?error=invalid_scope&state=X"}, b"", None),  # not ours
        (302, {"location": f"{CALLBACK}?error=invalid_scope&state=S"}, b"", "scopes"),
        (302, {"location": f"{CALLBACK}?error=access_denied&state=S"}, b"", "declined"),
        (200, {}, b"<html>sign in</html>", None),
        (503, {}, b"", None),
    ],
)
def test_preflight_diagnosis(
    status: int, headers: dict[str, str], body: bytes, expected: str | None
) -> None:
    problem = diagnose(Answer(status, headers, body), PROFILE, "S")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem.one_line()
        assert "\x1b" not in problem.one_line()
