"""The web console in real Chromium (Debian's, through Playwright) against the emulator.

One browser, one console and one emulator for the module; the tests run in order, each
leaving the state the next one starts from: the start token, the wizard (keyboard only, Accept
pressed on the emulator's consent page), the dashboard, reveal and copy, a rotation at the
emulator, the profile page, revoke, then the refusals (no CSRF token, a foreign Host).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from tests.conftest import (
    Emulator,
    Wx,
    assert_no_secret,
    base_env,
    start_emulator,
    store_at,
)
from tests.e2e.console_harness import (
    ConsoleProc,
    browser_context,
    require_chromium,
    shots_dir,
    start_console,
    tab_to,
    type_into,
    unlabelled,
)
from wxtoken.device import DEVICE_HELPER_REDIRECT_URIS

if TYPE_CHECKING:  # Playwright is imported lazily, so a missing package skips cleanly
    from playwright.sync_api import BrowserContext, Page

NAME = "wizrec"  # the profile the wizard creates
SIBLING = "hq-recorder"  # same integration, same org: a revocation of NAME ends it too


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver for the keeper page's test alert."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hook.received.append({"path": self.path, "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_chromium()
    home = tmp_path_factory.mktemp("console")
    # The device helper redirect URIs too, so a device sign-in's verification page approves.
    emu = start_emulator(
        *(a for uri in DEVICE_HELPER_REDIRECT_URIS for a in ("--redirect-uri", uri))
    )
    emu.policy(device_interval=1)
    short = start_emulator("--refresh-ttl", str(9 * 86400))  # a grant near its end
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    config = home / "keeper.toml"
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hooks/SECRET-PATH-123"
    config.write_text(f'[[alerts.webhook]]\nurl = "{hook_url}"\n')
    wx = Wx(home=home, env=base_env(home))
    # Other grants on the dashboard: one healthy sibling, one near its end, one never signed in.
    wx.add_profile(emu, SIBLING)
    assert wx.login(SIBLING).returncode == 0
    wx.add_profile(short, "branch-office")
    assert wx.login("branch-office").returncode == 0
    wx.add_profile(emu, "lab-test")
    console = start_console(wx.env, "--config", str(config))
    try:
        yield {"emu": emu, "wx": wx, "console": console, "home": home, "hook": hook}
    finally:
        console.stop()
        hook.shutdown()
        emu.stop()
        short.stop()


@pytest.fixture(scope="module")
def context(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from browser_context(tmp_path_factory.mktemp("chromium"))


@pytest.fixture(scope="module")
def page(context: BrowserContext) -> Page:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    return context.pages[0] if context.pages else context.new_page()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shots_dir(tmp_path_factory.mktemp("screenshots"))


def _console(world: dict[str, Any]) -> ConsoleProc:
    console = world["console"]
    assert isinstance(console, ConsoleProc)
    return console


def _row(page: Page, name: str) -> Any:
    return page.locator(f"#grants tr[data-profile='{name}']")


def test_refused_without_the_token_then_open_with_it(world: dict[str, Any], page: Page) -> None:
    c = _console(world)
    resp = page.goto(c.base + "/")
    assert resp is not None and resp.status == 403
    assert "no session" in page.content()
    resp = page.goto(c.base + "/start?token=not-the-token")
    assert resp is not None and resp.status == 403
    page.goto(c.start_url)
    assert page.url == c.base + "/", "the token must leave the address bar"
    assert page.locator("h1").inner_text().startswith("Grants")
    cookie = next(k for k in page.context.cookies() if k["name"] == f"wxtoken_console_{c.port}")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Spent: a second browser with the same address gets nothing.
    status, _, body = c.raw("GET", c.start_url.split(str(c.port), 1)[1], {"Host": "127.0.0.1"})
    assert status == 403 and "no session" in body


def test_wizard_end_to_end_by_keyboard(world: dict[str, Any], page: Page, shots: Path) -> None:
    c, emu = _console(world), world["emu"]
    assert isinstance(emu, Emulator)
    page.goto(c.base + "/wizard")
    assert unlabelled(page) == []
    order = tab_to(page, "name")
    assert "preset-verint-calling" in order  # the recorder choice comes before the name
    page.keyboard.press("Control+A")
    page.keyboard.type(NAME)
    page.keyboard.press("Enter")
    page.wait_for_url("**/wizard/portal")
    assert unlabelled(page) == []
    assert "spark-compliance:recordings_read" in page.locator("#scope-string").inner_text()
    page.screenshot(path=str(shots / "wizard.png"), full_page=True)
    type_into(page, "redirect_uri", emu.redirect_uri)
    page.keyboard.press("Enter")
    page.wait_for_url("**/wizard/credentials")
    assert unlabelled(page) == []
    # A bad client id is refused with the CLI's own message, before anything is stored.
    type_into(page, "client_id", "not-a-client-id")
    type_into(page, "client_secret", emu.client_secret)
    type_into(page, "base_url", emu.base_url)
    page.keyboard.press("Enter")
    page.wait_for_url("**/wizard/credentials")
    assert "client id" in page.locator(".notice-error").inner_text().lower()
    type_into(page, "client_id", emu.client_id)
    type_into(page, "client_secret", emu.client_secret)
    type_into(page, "base_url", emu.base_url)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/wizard/signin?profile={NAME}")
    tab_to(page, "start-signin")
    page.keyboard.press("Enter")
    link = page.locator("#open-signin")
    link.wait_for(state="visible")
    with page.context.expect_page() as popup_info:
        link.click()
    consent = popup_info.value
    consent.wait_for_load_state()
    consent.locator("#approve").click()  # Accept on the emulator's consent page
    consent.wait_for_load_state()
    assert "Signed in" in consent.locator("h1").inner_text()
    consent.close()
    page.wait_for_url(f"**/profile/{NAME}/export", timeout=20_000)
    assert page.locator("#verint-fields").is_visible()


def test_dashboard_shows_the_new_grant_ok(world: dict[str, Any], page: Page) -> None:
    page.goto(_console(world).base + "/")
    row = _row(page, NAME)
    assert row.get_attribute("data-state") == "ok"
    assert _row(page, "lab-test").get_attribute("data-state") == "login_required"
    assert _row(page, "branch-office").get_attribute("data-state") == "warning"
    states = [r.get_attribute("data-state") for r in page.locator("#grants tbody tr").all()]
    assert states.index("login_required") < states.index("warning") < states.index("ok")


def test_probe_now_shows_what_webex_said(world: dict[str, Any], page: Page) -> None:
    c = _console(world)
    page.goto(c.base + f"/profile/{SIBLING}")
    page.get_by_role("button", name="Probe now").click()
    page.wait_for_url(f"**/profile/{SIBLING}")
    assert f"Probed '{SIBLING}' at Webex: alive" in page.locator(".notice").inner_text()
    page.goto(c.base + "/")
    assert "alive" in _row(page, SIBLING).inner_text()


def test_reveal_and_copy_is_a_recorded_hand_off(world: dict[str, Any], page: Page) -> None:
    c, wx = _console(world), world["wx"]
    store = store_at(wx.home / "store", wx.env)
    loaded = store.load_token(NAME)
    assert loaded is not None
    refresh_token = loaded[1].refresh_token
    assert refresh_token
    page.goto(c.base + f"/profile/{NAME}/export")
    assert refresh_token not in page.content()  # not in a page until revealed
    before = len(store.events(NAME, ("export",)))
    page.locator("#reveal").click()
    page.locator("#f-refresh-token").wait_for()
    assert page.locator("#f-refresh-token").inner_text() == refresh_token
    page.locator("button[data-copy='f-refresh-token']").click()
    page.locator("button[data-copy='f-refresh-token'][data-copied='yes']").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == refresh_token
    exports = store.events(NAME, ("export",))
    assert len(exports) == before + 1 and exports[0].detail["format"] == "verint"
    page.goto(c.base + "/")
    assert _row(page, NAME).get_attribute("data-copy") == "current"


def test_rotation_at_webex_makes_the_recorder_copy_stale(
    world: dict[str, Any], page: Page, shots: Path
) -> None:
    c, emu = _console(world), world["emu"]
    emu.policy(rotate="always")
    page.goto(c.base + f"/profile/{NAME}")
    page.get_by_role("button", name="Refresh now").click()
    page.wait_for_url(f"**/profile/{NAME}")
    assert "NEW refresh token" in page.locator(".notice").inner_text()
    page.goto(c.base + "/")
    row = _row(page, NAME)
    assert row.get_attribute("data-copy") == "stale"
    assert row.get_attribute("data-state") == "warning"
    assert "stale" in row.inner_text()
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    page.locator("#timeline").screenshot(path=str(shots / "timeline.png"))
    svg = page.locator("#timeline svg").inner_html()
    assert "today" in svg and NAME in svg and ">14d<" in svg  # a threshold is marked


def test_profile_page_and_revoke_with_typed_confirmation(
    world: dict[str, Any], page: Page, shots: Path
) -> None:
    c = _console(world)
    page.goto(c.base + f"/profile/{NAME}")
    assert unlabelled(page) == []
    revoke_box = page.locator("#revoke")
    assert SIBLING in revoke_box.inner_text()  # names the sibling it also ends
    assert page.locator("#events tr[data-kind='export']").count() >= 1
    page.screenshot(path=str(shots / "profile.png"), full_page=True)
    page.fill("#confirm", "wrong-name")
    page.get_by_role("button", name="Revoke").click()
    assert "does not match" in page.locator(".notice-error").inner_text()
    page.fill("#confirm", NAME)
    page.get_by_role("button", name="Revoke").click()
    assert "Revoked at Webex" in page.locator(".notice").inner_text()
    page.goto(c.base + "/")
    assert _row(page, NAME).get_attribute("data-state") == "login_required"
    assert _row(page, SIBLING).get_attribute("data-state") == "login_required"


def test_keeper_page_sends_a_test_alert_without_showing_secret_parts(
    world: dict[str, Any], page: Page
) -> None:
    page.goto(_console(world).base + "/keeper")
    channels = page.locator("#channels").inner_text()
    assert "webhook http://127.0.0.1" in channels and "SECRET-PATH" not in page.content()
    page.locator("#test-alert").click()
    assert "sent" in page.locator(".notice").inner_text()
    assert Hook.received and Hook.received[-1]["path"] == "/hooks/SECRET-PATH-123"
    assert "test alert" in Hook.received[-1]["body"]["text"]


def test_device_sign_in_shows_the_code_and_its_qr_code(world: dict[str, Any], page: Page) -> None:
    c = _console(world)
    page.goto(c.base + "/wizard/signin?profile=lab-test")
    assert unlabelled(page) == []
    page.locator("#start-device").click()
    code = page.locator("#user-code")
    code.wait_for()
    assert code.inner_text().strip().isalnum()
    assert page.locator(".qr svg path").count() == 1
    with page.context.expect_page() as verify_info:
        page.locator("#open-verification").click()
    verify = verify_info.value
    verify.wait_for_load_state()
    verify.locator("button[value='approve']").click()
    verify.close()
    page.wait_for_url("**/profile/lab-test/export", timeout=20_000)
    page.goto(c.base + "/")
    assert _row(page, "lab-test").get_attribute("data-state") == "ok"


def test_a_post_without_the_csrf_token_is_refused(world: dict[str, Any], page: Page) -> None:
    page.goto(_console(world).base + "/")
    script = """async ([path, token]) => {
        const headers = token ? {"X-CSRF-Token": token} : {};
        const r = await fetch(path, {method: "POST", headers, credentials: "same-origin"});
        return r.status; }"""
    assert page.evaluate(script, [f"/profile/{SIBLING}/mark-current", ""]) == 403
    assert page.evaluate(script, [f"/profile/{SIBLING}/mark-current", "forged"]) == 403


def test_a_foreign_host_header_is_refused_and_headers_are_strict(
    world: dict[str, Any], page: Page
) -> None:
    c = _console(world)
    cookie = next(k for k in page.context.cookies() if k["name"] == f"wxtoken_console_{c.port}")
    jar = f"{cookie['name']}={cookie['value']}"
    status, _, _ = c.raw("GET", "/", {"Host": f"attacker.example:{c.port}", "Cookie": jar})
    assert status == 421
    status, headers, _ = c.raw("GET", "/", {"Host": f"localhost:{c.port}", "Cookie": jar})
    assert status == 200
    lowered = {k.lower(): v for k, v in headers.items()}
    assert "script-src 'self'" in lowered["content-security-policy"]
    assert "unsafe-inline" not in lowered["content-security-policy"]
    assert lowered["x-frame-options"] == "DENY"
    assert lowered["referrer-policy"] == "no-referrer"
    assert lowered["cache-control"] == "no-store"


def test_no_secret_reached_the_console_log(world: dict[str, Any]) -> None:
    c, emu, wx = _console(world), world["emu"], world["wx"]
    store = store_at(wx.home / "store", wx.env)
    loaded = store.load_token(SIBLING) or store.load_token("branch-office")
    secrets = [emu.client_secret]
    if loaded is not None and loaded[1].refresh_token:
        secrets.append(loaded[1].refresh_token)
    log = "".join(c.lines)
    token_line = [line for line in c.lines if "/start?token=" in line]
    assert len(token_line) == 1  # the one start address, nothing else
    assert_no_secret([log], secrets)


def test_the_readme_screenshots_were_taken(shots: Path) -> None:
    for name in ("dashboard", "timeline", "wizard", "profile"):
        data = (shots / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
