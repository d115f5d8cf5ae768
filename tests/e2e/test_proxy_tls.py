"""wxtoken inside a company network: real proxies (proxy.py) on loopback in front of the
emulator speaking TLS (`wxtoken emulator --tls`), with the installed CLI.

Profiles reach the emulator as https://webex.test:PORT: the proxies resolve *.test to 127.0.0.1
(wxtoken sends the name in CONNECT and never resolves it itself), and the emulator's throwaway
certificate names webex.test. The proxy password is a canary scanned for in every output, log,
alert, event and the SQLite file's bytes.
"""

from __future__ import annotations

import http.server
import io
import json
import signal
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    WXTOKEN,
    Emulator,
    Wx,
    assert_no_secret,
    canary,
    start_emulator,
    store_at,
)
from tests.proxies import INSPECTION_CA, Proxy, require_proxy_py, start_proxy
from wxtoken._local import Settings
from wxtoken.emulator.tlscerts import make_tls_files
from wxtoken.keeper.alerts import Dispatcher
from wxtoken.keeper.config import parse_config
from wxtoken.keeper.managers import Managers
from wxtoken.keeper.schedule import Alert
from wxtoken.reasons import Forced

USER = "wxuser"
PASSWORD = canary("proxy-password")
PASTE_REDIRECT = "https://oauth.pstmn.io/v1/callback"
SCOPES = "spark:kms spark:people_read identity:tokens_read identity:tokens_write"


@pytest.fixture(scope="module")
def tls_emu() -> Iterator[Emulator]:
    require_proxy_py()
    emu = start_emulator(
        "--tls", "--tls-name", "webex.test", "--tls-name", "refused.test", "--auto-approve"
    )
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory, tls_emu: Emulator) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("proxies")
    started: dict[str, Proxy] = {}
    try:
        started["plain"] = start_proxy(base / "plain")
        started["auth"] = start_proxy(base / "auth", credentials=(USER, PASSWORD))
        started["inspect"] = start_proxy(base / "inspect", inspect_upstream_ca=ca_of(tls_emu))
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


def ca_of(emu: Emulator) -> Path:
    return Path(emu.info["ca_file"])


def via(emu: Emulator, host: str = "webex.test") -> str:
    return f"https://{host}:{emu.base_url.rsplit(':', 1)[1]}"


def add(wx: Wx, emu: Emulator, name: str, *extra: str, host: str = "webex.test") -> None:
    wx(
        *("profile", "add", name, "--client-id", emu.client_id, "--redirect-uri", PASTE_REDIRECT),
        *("--scopes", SCOPES, "--base-url", via(emu, host), "--client-secret-stdin", *extra),
        input=emu.client_secret + "\n",
        check=0,
    )


def opener(emu: Emulator) -> urllib.request.OpenerDirector:
    """Straight to the emulator (not through a proxy), trusting its CA, following no redirect."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **k: Any) -> None:
            return None

    ctx = ssl.create_default_context(cafile=str(ca_of(emu)))
    return urllib.request.build_opener(
        NoRedirect, urllib.request.HTTPSHandler(context=ctx), urllib.request.ProxyHandler({})
    )


def control(emu: Emulator, path: str) -> Any:
    with opener(emu).open(f"{emu.base_url}/_emulator/{path}", timeout=10) as resp:
        return json.loads(resp.read())


def code_for(emu: Emulator) -> str:
    """A code from the emulator's authorize page (auto-approved), as a browser gets it."""
    query = urllib.parse.urlencode(
        {
            "client_id": emu.client_id,
            "response_type": "code",
            "redirect_uri": PASTE_REDIRECT,
            "scope": SCOPES,
            "state": "s",
        }
    )
    try:
        opener(emu).open(f"{emu.base_url}/v1/authorize?{query}", timeout=10)
    except urllib.error.HTTPError as exc:
        location = str(exc.headers["location"])
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]


def exchange(wx: Wx, emu: Emulator, name: str, **kw: Any) -> Any:
    return wx("exchange", "-p", name, "--code", "-", input=code_for(emu) + "\n", **kw)


@contextmanager
def tls_webhook(directory: Path) -> Iterator[tuple[str, Path, list[Any]]]:
    """An HTTPS webhook receiver on 127.0.0.1, named hooks.test in its own throwaway CA's
    certificate: (its URL, that CA, the JSON bodies received)."""
    files = make_tls_files(directory, ("hooks.test",))
    received: list[Any] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert_file, files.key_file)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield (
            f"https://hooks.test:{server.server_address[1]}/hook/SECRETPATH",
            files.ca_file,
            received,
        )
    finally:
        server.shutdown()
        server.server_close()


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_connect_proxy_from_the_environment_with_the_ca_from_the_environment(
    wx: Wx, tls_emu: Emulator, proxies: Any
) -> None:
    plain = proxies["plain"]
    wx.env.update(HTTPS_PROXY=plain.url, SSL_CERT_FILE=str(ca_of(tls_emu)))
    add(wx, tls_emu, "rec")
    exchange(wx, tls_emu, "rec", check=0)
    wx("refresh", "-p", "rec", "--force", check=0)
    target = via(tls_emu).split("//", 1)[1]
    assert plain.connects().count(target) >= 1
    status = json.loads(wx("status", "--json", check=0).stdout)[0]
    assert status["proxy"] == f"{plain.url} (from HTTPS_PROXY)"
    assert status["trust"].startswith("the OS trust store (")
    assert f"+ SSL_CERT_FILE {ca_of(tls_emu)}" in status["trust"]


def test_an_authenticating_proxy_carries_every_path_and_its_password_shows_nowhere(
    wx: Wx, tls_emu: Emulator, proxies: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    auth = proxies["auth"]
    ca = str(ca_of(tls_emu))
    wx.env["WXTOKEN_PROXY_PASSWORD"] = PASSWORD
    add(wx, tls_emu, "rec", "--proxy", f"http://{USER}@127.0.0.1:{auth.port}", "--ca-file", ca)
    shown = json.loads(wx("profile", "show", "rec", "--json", check=0).stdout)
    home = Path(wx.env["WXTOKEN_HOME"])
    files = b"".join(p.read_bytes() for p in home.iterdir() if p.is_file())
    assert f"http://{USER}@127.0.0.1:{auth.port}".encode() in files  # stored with its user
    assert shown["proxy"] == f"http://127.0.0.1:{auth.port} (with a user name)"
    assert shown["ca_file"] == ca
    before = len(auth.connects())
    exchange(wx, tls_emu, "rec", check=0)  # the login's code exchange
    debug = wx("refresh", "-p", "rec", "--force", env={"WXTOKEN_DEBUG": "1"}, check=0)
    # The debug log names the proxy (without credentials); it is scanned below too.
    assert f"via proxy http://127.0.0.1:{auth.port} -> 200" in debug.stderr
    wx("verify", "-p", "rec", check=0)
    wx("status", "-p", "rec", "--probe", check=0)
    me = json.loads(wx("api", "-p", "rec", "/v1/people/me", check=0).stdout)
    assert me["type"] == "person"
    status = wx("status", "-p", "rec", check=0).stdout
    assert f"rec: proxy http://127.0.0.1:{auth.port} (from the profile's --proxy, with " in status
    doctor = wx("doctor", "-p", "rec", check=None)
    assert f"proxy http://127.0.0.1:{auth.port}" in doctor.stdout + doctor.stderr
    assert f"--ca-file {ca}" in doctor.stdout + doctor.stderr

    # The keeper's webhook and Webex-message alerts go the profile's way: its proxy, its CA
    # file, plus the environment's anchors (the webhook's CA through SSL_CERT_FILE).
    monkeypatch.setenv("WXTOKEN_TEST_BOT", tls_emu.info["bot_token"])
    with tls_webhook(tmp_path / "hook") as (hook_url, hook_ca, received):
        env = dict(wx.env, SSL_CERT_FILE=str(hook_ca))
        webex = {"room_id": "ROOM-NET", "token_env": "WXTOKEN_TEST_BOT", "base_url": via(tls_emu)}
        config = parse_config({"alerts": {"webex": [webex], "webhook": [{"url": hook_url}]}})
        store = store_at(Path(wx.env["WXTOKEN_HOME"]), env)
        log = io.StringIO()
        alerts = Dispatcher(store, config, log=log, settings=Settings(env))
        alerts.start()
        alerts.submit(Alert("net:test", "failures", "rec", None, "refreshing rec fails", "none"))
        alerts.flush()
        alerts.stop()
    assert alerts.delivered == 2, log.getvalue()
    # The keeper's own refreshes: its shared client for the profile goes the same way.
    managers = Managers(store, Settings(env), stopping=threading.Event())
    mark = len(auth.connects())
    assert managers.get("rec").refresh(Forced()).token.access_token
    managers.close()
    assert len(auth.connects()) > mark
    assert [r["profile"] for r in received] == ["rec"]
    messages = control(tls_emu, "messages")["items"]
    assert any(m["roomId"] == "ROOM-NET" for m in messages)
    assert {"hooks.test", "webex.test"} <= {c.split(":")[0] for c in auth.connects()}

    # A proxy URL with the password in it, curl's way, from the environment.
    wx("profile", "set", "rec", "--proxy", "", check=0)
    url_env = {
        "HTTPS_PROXY": f"http://{USER}:{PASSWORD}@127.0.0.1:{auth.port}",
        "WXTOKEN_PROXY_PASSWORD": "",
        "WXTOKEN_DEBUG": "1",
    }
    wx("refresh", "-p", "rec", "--force", env=url_env, check=0)
    doctor = wx("doctor", "-p", "rec", env=url_env)
    assert f"HTTPS_PROXY=http://127.0.0.1:{auth.port}" in doctor.stdout + doctor.stderr
    wx("revoke", "-p", "rec", "--yes", env=url_env, check=0)
    assert len(auth.connects()) - before >= 8

    stored = b"".join(p.read_bytes() for p in home.iterdir() if p.is_file())
    assert PASSWORD.encode() not in stored
    events = [json.dumps(e.detail) for e in store.events(limit=1000)]
    texts = [
        *wx.outputs,
        log.getvalue(),
        *events,
        json.dumps(messages),
        json.dumps(received),
        *tls_emu.stderr_lines,
        *(p.log.read_text() for p in proxies.values()),
        stored.decode("latin-1"),
    ]
    assert_no_secret(texts, [PASSWORD])


def test_proxy_refusals_are_named_and_never_read_as_webex(
    wx: Wx, tls_emu: Emulator, proxies: Any
) -> None:
    auth = proxies["auth"]
    # The profile's --proxy wins over the environment's (which would let the request through).
    wx.env.update(SSL_CERT_FILE=str(ca_of(tls_emu)), HTTPS_PROXY=proxies["plain"].url)
    proxy = f"http://{USER}@127.0.0.1:{auth.port}"
    add(wx, tls_emu, "rec", "--proxy", proxy)
    mark = control(tls_emu, "ledger?since=999999999")["total"]

    line = one_error_line(exchange(wx, tls_emu, "rec", check=5).stderr)
    assert f"the proxy http://127.0.0.1:{auth.port} needs credentials (407)" in line
    assert "WXTOKEN_PROXY_PASSWORD" in line
    wrong = {"WXTOKEN_PROXY_PASSWORD": "not-the-password"}
    line = one_error_line(exchange(wx, tls_emu, "rec", env=wrong, check=5).stderr)
    assert "refused the credentials it was given (407)" in line

    add(wx, tls_emu, "blocked", "--proxy", proxy, host="refused.test")
    ok = {"WXTOKEN_PROXY_PASSWORD": PASSWORD}
    line = one_error_line(exchange(wx, tls_emu, "blocked", env=ok, check=5).stderr)
    port = tls_emu.base_url.rsplit(":", 1)[1]
    assert "refuses refused.test (403)" in line
    assert f"ask the network team to allow refused.test:{port} through the proxy" in line

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    wx("profile", "set", "rec", "--proxy", f"http://127.0.0.1:{dead}", check=0)
    line = one_error_line(exchange(wx, tls_emu, "rec", check=5).stderr)
    assert f"cannot connect to the proxy http://127.0.0.1:{dead}" in line

    with socket.socket() as silent:  # accepts connections (backlog) and never answers CONNECT
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port_silent = silent.getsockname()[1]
        wx("profile", "set", "rec", "--proxy", f"http://127.0.0.1:{port_silent}", check=0)
        slow = {"WXTOKEN_HTTP_DEADLINE": "2"}
        line = one_error_line(exchange(wx, tls_emu, "rec", env=slow, check=5).stderr)
    assert f"the proxy http://127.0.0.1:{port_silent} gave no tunnel to webex.test:{port}" in line
    # None of these reached the emulator: no answer was Webex's.
    ledger = control(tls_emu, f"ledger?since={mark}")["entries"]
    assert [e for e in ledger if e.get("endpoint") == "access_token"] == []
    assert_no_secret(wx.outputs, [PASSWORD])


def test_a_tls_inspecting_proxy_is_refused_until_its_ca_is_trusted(
    wx: Wx, tls_emu: Emulator, proxies: Any
) -> None:
    inspect = proxies["inspect"]
    assert inspect.ca_file is not None
    wx.env.update(HTTPS_PROXY=inspect.url, SSL_CERT_FILE=str(ca_of(tls_emu)))
    add(wx, tls_emu, "rec")
    line = one_error_line(exchange(wx, tls_emu, "rec", check=5).stderr)
    assert (
        f"the TLS certificate of webex.test was not accepted (issued by '{INSPECTION_CA}'" in line
    )
    assert "install its CA in the OS trust store" in line
    assert "wxtoken profile set rec --ca-file CA.pem" in line
    # Trusted through the profile's --ca-file ...
    wx("profile", "set", "rec", "--ca-file", str(inspect.ca_file), check=0)
    exchange(wx, tls_emu, "rec", check=0)
    # ... and through the environment instead.
    wx("profile", "set", "rec", "--ca-file", "", check=0)
    wx("refresh", "-p", "rec", "--force", env={"SSL_CERT_FILE": str(inspect.ca_file)}, check=0)
    assert via(tls_emu).split("//", 1)[1] in inspect.connects()


def test_no_proxy_and_loopback_go_direct(wx: Wx, tls_emu: Emulator, proxies: Any) -> None:
    auth = proxies["auth"]
    wx.env.update(HTTPS_PROXY=auth.url, SSL_CERT_FILE=str(ca_of(tls_emu)))
    add(wx, tls_emu, "rec")
    before = len(auth.connects()), auth.settled().count("ProxyAuthenticationFailed")
    # NO_PROXY names the domain: wxtoken goes direct, and *.test resolves nowhere but the proxy.
    proc = exchange(wx, tls_emu, "rec", env={"NO_PROXY": "example.com, .test"}, check=5)
    assert "cannot reach Webex at https://webex.test" in one_error_line(proc.stderr)
    after = len(auth.connects()), auth.settled().count("ProxyAuthenticationFailed")
    assert after == before
    # A loopback base URL (the emulator itself) is never proxied, whatever the environment says.
    wx(
        *("profile", "add", "direct", "--client-id", tls_emu.client_id, "--redirect-uri"),
        *(PASTE_REDIRECT, "--scopes", SCOPES, "--base-url", tls_emu.base_url),
        "--client-secret-stdin",
        input=tls_emu.client_secret + "\n",
        check=0,
    )
    exchange(wx, tls_emu, "direct", env={"HTTPS_PROXY": "http://127.0.0.1:9"}, check=0)


def test_emulator_tls_banner_names_its_throwaway_ca_and_removes_it_at_exit(wx: Wx) -> None:
    proc = subprocess.Popen(
        [WXTOKEN, "emulator", "--tls", "--quiet"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        banner = [proc.stdout.readline() for _ in range(12)]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert banner[0].startswith("Webex emulator listening on https://127.0.0.1:")
    line = next(b for b in banner if "CA certificate" in b)
    ca = Path(line.split()[2])
    assert f"export SSL_CERT_FILE={ca}\n" in [b.strip() + "\n" for b in banner]
    assert not ca.exists() and not ca.parent.exists()  # throwaway: gone with the emulator
    proc2 = wx("emulator", "--tls-name", "x.test", check=2)
    assert "--tls-name and --tls-dir go with --tls" in proc2.stderr


def test_emulator_tls_dir_keeps_its_ca_across_restarts(tmp_path: Path) -> None:
    seen = []
    for _ in range(2):
        emu = start_emulator("--tls", "--tls-dir", str(tmp_path / "tls"))
        seen.append((Path(emu.info["ca_file"]), Path(emu.info["ca_file"]).read_bytes()))
        emu.stop()
    assert seen[0] == seen[1] and seen[0][0] == tmp_path / "tls" / "ca.pem"
    assert (tmp_path / "tls" / "server.key").stat().st_mode & 0o077 == 0
