"""The console's access checks, timeline and wizard steps in process, through the whole ASGI
stack (the browser tests in tests/e2e/test_console_browser.py cover the same in Chromium)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from wxtoken._local import Settings
from wxtoken.console.app import Console, build_app
from wxtoken.console.security import MAX_FORM_BYTES, Gate, host_is_loopback
from wxtoken.console.timeline import timeline_svg
from wxtoken.status import ProfileStatus
from wxtoken.store import open_store

Answer = tuple[int, dict[bytes, bytes], str]


def call(app: Any, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Answer:
    sent: list[dict[str, Any]] = []
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        if not asked:
            asked.append(True)
            return {"type": "http.request", "body": body, "more_body": False}
        while not (sent and sent[-1]["type"] == "http.response.body"):
            await asyncio.sleep(0.001)  # a browser stays until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "scheme": "http",
        "server": ("127.0.0.1", 8766),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), dict(start["headers"]), text.decode()


class Browser:
    """What a browser does with the console: keep its cookie, send the CSRF token it was given."""

    def __init__(self, app: Any, gate: Gate) -> None:
        self.app = app
        status, headers, _ = call(app, "GET", gate.start_url(""), {"Host": "127.0.0.1:8766"})
        assert status == 303 and headers[b"location"] == b"/"
        self.set_cookie = headers[b"set-cookie"].decode()
        self.cookie = self.set_cookie.split(";")[0]

    def get(self, target: str) -> Answer:
        return call(self.app, "GET", target, {"Host": "127.0.0.1:8766", "Cookie": self.cookie})

    def post(self, target: str, form: dict[str, str], csrf: bool = True) -> Answer:
        if csrf:
            page = self.get("/wizard")[2]
            form = dict(form, csrf=page.split('name="csrf" value="')[1].split('"')[0])
        headers = {
            "Host": "127.0.0.1:8766",
            "Cookie": self.cookie,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return call(self.app, "POST", target, headers, urlencode(form).encode())


def new_console(
    tmp_path: Path, *, key_file: bool = True, transport: Any = None
) -> tuple[Console, Gate]:
    """A console over a new store in `tmp_path` (keyed by a key file there, unless not)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
    env["WXTOKEN_HOME"] = str(tmp_path / "home")
    if key_file:
        env["WXTOKEN_KEY_FILE"] = str(tmp_path / "key")
    settings = Settings(env)
    gate = Gate()
    return Console(settings, open_store(settings), gate, transport=transport), gate


@pytest.fixture
def console(tmp_path: Path) -> tuple[Any, Gate, Console]:
    c, gate = new_console(tmp_path, key_file=False)
    return build_app(c), gate, c


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8766", True),
        ("localhost", True),
        ("LOCALHOST:1", True),
        ("[::1]:8766", True),
        ("evil.example", False),
        ("127.0.0.1.nip.io:8766", False),
        ("localhost.evil.example", False),
        ("[::2]:8766", False),
        ("", False),
    ],
)
def test_only_loopback_host_names_are_answered(host: str, ok: bool) -> None:
    assert host_is_loopback({"headers": [(b"host", host.encode())]}) is ok


def test_the_start_token_works_once_and_nothing_works_without_a_session(
    console: tuple[Any, Gate, Console],
) -> None:
    app, gate, _ = console
    start = gate.start_url("")
    assert call(app, "GET", "/", {"Host": "127.0.0.1"})[0] == 403
    assert call(app, "GET", "/start?token=wrong", {"Host": "127.0.0.1"})[0] == 403
    browser = Browser(app, gate)
    assert "; HttpOnly" in browser.set_cookie and "; SameSite=Strict" in browser.set_cookie
    assert browser.get("/")[0] == 200
    assert call(app, "GET", start, {"Host": "127.0.0.1"})[0] == 403  # spent
    assert call(app, "GET", "/", {"Host": "evil.example", "Cookie": browser.cookie})[0] == 421


def test_posts_need_the_csrf_token_and_a_small_body(console: tuple[Any, Gate, Console]) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    status, _, text = browser.post("/wizard", {"name": "rec", "preset": "verint-calling"}, False)
    assert status == 403 and "CSRF" in text
    status, headers, _ = browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    assert status == 303 and headers[b"location"] == b"/wizard/portal"
    big = {"name": "x" * MAX_FORM_BYTES}
    assert browser.post("/wizard", big)[0] == 413
    anonymous = {"Host": "127.0.0.1", "Content-Type": "application/x-www-form-urlencoded"}
    assert call(app, "POST", "/static/console.css", anonymous, b"a=1")[0] == 403


def test_every_answer_carries_the_security_headers(console: tuple[Any, Gate, Console]) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    for target in ("/", "/wizard", "/keeper", "/static/console.css", "/no-such-page"):
        _, headers, _ = browser.get(target)
        csp = headers[b"content-security-policy"].decode()
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, target
        assert headers[b"x-frame-options"] == b"DENY", target
        assert headers[b"referrer-policy"] == b"no-referrer", target
        assert headers[b"cache-control"] == b"no-store", target


def test_wizard_steps_use_the_clis_checks(console: tuple[Any, Gate, Console]) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "bad name!", "preset": "verint-calling"})
    page = browser.get("/wizard")[2]
    assert "profile name &#39;bad name!&#39; is not allowed" in page
    browser.post("/wizard", {"name": "rec", "preset": "other", "scopes": "spark:kms bad^scope"})
    assert "scope" in browser.get("/wizard")[2].split('class="notice-text">')[1].lower()
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    browser.post("/wizard/portal", {"redirect_uri": "http://127.0.0.1:8765/callback"})
    page = browser.get("/wizard/credentials")[2]
    assert 'id="ks-passphrase"' in page  # a new store: the admin chooses the key source


def test_a_new_store_gets_the_key_source_the_admin_chose(
    console: tuple[Any, Gate, Console],
) -> None:
    app, gate, c = console
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    browser.post("/wizard/portal", {"redirect_uri": "http://127.0.0.1:8765/callback"})
    creds = {
        "client_id": "C" + "1" * 64,
        "client_secret": "s" * 40,
        "base_url": "https://webexapis.com",
        "key_source": "passphrase",
        "passphrase": "correct horse",
        "passphrase2": "another horse",
    }
    browser.post("/wizard/credentials", creds)
    assert "passphrases are empty or differ" in browser.get("/wizard/credentials")[2]
    status, headers, _ = browser.post(
        "/wizard/credentials", dict(creds, passphrase2="correct horse")
    )
    assert status == 303 and headers[b"location"] == b"/wizard/signin?profile=rec"
    assert c.store.key_source() == "passphrase"
    assert c.store.client_secret("rec") == "s" * 40
    assert "s" * 40 not in browser.get("/profile/rec")[2]  # the secret is not on a page


def test_timeline_escapes_names_and_marks_thresholds_and_today() -> None:
    now = 1_800_000_000.0
    row = ProfileStatus(
        profile="<script>alert(1)</script>",
        state="warning",
        reason=None,
        access_expires_at=now + 3600,
        refresh_expires_at=now + 10 * 86400,
        scopes=(),
        requested_scopes=(),
        org_id=None,
        user=None,
        storage="x",
        key_source=None,
        failures=0,
        last_error=None,
        last_success_at=None,
    )
    gone = ProfileStatus(**{**row.__dict__, "profile": "old", "refresh_expires_at": now - 1})
    svg = timeline_svg([row, gone], now, (30 * 86400, 14 * 86400, 86400))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count('class="tl-threshold"') == 3
    assert ">today<" in svg and ">30d<" in svg
    assert "expired" in svg and 'class="tl-bar tl-warning"' in svg


def test_browser_tests_skip_without_chromium_but_fail_on_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.e2e import console_harness

    monkeypatch.setattr(console_harness, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        console_harness.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        console_harness.require_chromium()


def test_a_service_app_page_shows_its_chain_and_mints_instead_of_signing_in(
    tmp_path: Path,
) -> None:
    from wxtoken.admin import add_profile, add_service_app

    c, gate = new_console(tmp_path)
    app = build_app(c)
    c.store.unlock(create=True)
    add_profile(
        "minter",
        client_id="C" + "2" * 64,
        client_secret="m" * 40,
        redirect_uri="http://127.0.0.1:8765/callback",
        scopes="spark:applications_token spark:kms",
        store=c.store,
    )
    add_service_app(
        "svc",
        app_id="Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2FiYw",
        client_id="C" + "3" * 64,
        client_secret="v" * 40,
        target_org="46e7fdde-45ff-4b46-a025-0261bb175807",
        minter="minter",
        scopes="spark-admin:recordings_read",
        store=c.store,
    )
    browser = Browser(app, gate)
    status, _, page = browser.get("/profile/svc")
    assert status == 200
    assert "Minted through: svc ← minter" in page and "Mint again" in page
    status, _, page = browser.get("/wizard/signin?profile=svc")
    assert status == 200 and "Mint now" in page and "start-device" not in page


def test_a_taken_port_is_one_clear_error_with_the_fix() -> None:
    import socket

    from wxtoken.console.server import bind_loopback
    from wxtoken.errors import UsageError

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(UsageError) as caught:
            bind_loopback(port)
    assert f"127.0.0.1:{port}" in caught.value.message
    assert caught.value.fix is not None and "--port 0" in caught.value.fix
    for sock in bind_loopback(0):
        assert sock.getsockname()[0] in ("127.0.0.1", "::1")
        sock.close()


def test_the_browser_is_opened_on_a_private_file_not_the_token(tmp_path: Path) -> None:
    from wxtoken.console.server import opener_file

    url = "http://127.0.0.1:8766/start?token=abc&x=<y>"
    path = opener_file(str(tmp_path / "home"), url)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700
    text = path.read_text()
    assert "token=abc&amp;x=&lt;y&gt;" in text and "<script" not in text
