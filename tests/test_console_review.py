"""The console under review: what an attacker or a first-time admin did to it, each a defect
that was found and fixed, replayed through the whole ASGI stack (the same `Browser` as
tests/test_console_inproc.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.test_console_inproc import Browser, call, console, new_console
from wxtoken.console.app import Console, build_app
from wxtoken.console.security import Gate
from wxtoken.emulator import Emulator, EmulatorTransport
from wxtoken.emulator.model import Fault

__all__ = ["console"]  # the fixture, shared with test_console_inproc

REDIRECT = "http://127.0.0.1:8765/callback"


def notice_of(page: str) -> str:
    return page.split('class="notice-text">')[1].split("</p>")[0] if "notice-text" in page else ""


def test_a_forged_preset_sends_the_admin_back_instead_of_a_traceback(
    console: tuple[Any, Gate, Console],
) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    status, headers, _ = browser.post("/wizard", {"name": "rec", "preset": "no-such-preset"})
    assert status == 303 and headers[b"location"] == b"/wizard"
    assert "unknown recorder preset" in notice_of(browser.get("/wizard")[2])
    # Was a KeyError (500, a traceback on the console's stderr) on the next step's page.
    status, headers, _ = browser.get("/wizard/portal")
    assert status == 303 and headers[b"location"] == b"/wizard"


def test_credentials_posted_before_the_earlier_steps_go_back_to_them(
    console: tuple[Any, Gate, Console],
) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    creds = {"client_id": "C" + "1" * 64, "client_secret": "s" * 40, "key_source": "keyring"}
    status, headers, _ = browser.post("/wizard/credentials", creds)
    assert status == 303 and headers[b"location"] == b"/wizard/portal"


def test_a_key_source_that_fails_can_be_replaced_by_another(
    console: tuple[Any, Gate, Console], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    import keyring.backends.fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.backends.fail.Keyring())
    app, gate, c = console
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    browser.post("/wizard/portal", {"redirect_uri": REDIRECT})
    creds = {"client_id": "C" + "1" * 64, "client_secret": "s" * 40, "key_source": "keyring"}
    browser.post("/wizard/credentials", creds)
    page = browser.get("/wizard/credentials")[2]
    assert "keyring is unavailable" in notice_of(page)
    # The choice is offered again (it was "decided by the environment": keyring, for good).
    assert 'id="ks-passphrase"' in page
    assert 'choose "passphrase" or "key file" above' in page.replace("&#34;", '"')
    again = dict(creds, key_source="passphrase", passphrase="correct horse")
    status, headers, _ = browser.post(
        "/wizard/credentials", dict(again, passphrase2="correct horse")
    )
    assert status == 303 and headers[b"location"] == b"/wizard/signin?profile=rec"
    assert c.store.key_source() == "passphrase"
    assert c.store.client_secret("rec") == "s" * 40


def test_a_redirect_uri_the_console_cannot_catch_is_refused_before_the_sign_in(
    tmp_path: Path,
) -> None:
    from wxtoken.admin import add_profile

    c, gate = new_console(tmp_path)
    c.store.unlock(create=True)
    postman = "https://oauth.pstmn.io/v1/callback"  # an address admins often register
    add_profile(
        "rec",
        client_id="C" + "1" * 64,
        client_secret="s" * 40,
        redirect_uri=postman,
        preset="verint-calling",
        base_url="http://127.0.0.1:9",
        store=c.store,
    )
    browser = Browser(build_app(c), gate)
    browser.get("/wizard/signin?profile=rec")
    status, headers, _ = browser.post("/wizard/signin", {"profile": "rec", "method": "browser"})
    assert status == 303 and headers[b"location"] == b"/wizard/signin?profile=rec"
    # Was: a sign-in started whose only possible end was "nothing was pasted".
    assert "rec" not in c.jobs
    page = browser.get("/wizard/signin?profile=rec")[2].replace("&#34;", '"')
    assert f"uses {postman}" in notice_of(page)
    assert 'press "Sign in with a code" instead' in page
    assert "`wxtoken login -p rec --paste`" in page


def signed_in(tmp_path: Path) -> tuple[Any, Gate, Console, Emulator]:
    """A console over an in-process emulator with one signed-in profile, `rec`."""
    from wxtoken.admin import add_profile

    emulator = Emulator()
    seed = emulator.seed_default()["integration"]
    c, gate = new_console(tmp_path, transport=EmulatorTransport(emulator))
    c.store.unlock(create=True)
    add_profile(
        "rec",
        client_id=seed.client_id,
        client_secret=seed.client_secret,
        redirect_uri=REDIRECT,
        preset="verint-calling",
        base_url="http://127.0.0.1:1",  # the in-process transport ignores host and port
        store=c.store,
    )
    scopes = list(c.store.get_profile("rec").scopes)
    code = emulator.authorization_code(seed.client_id, REDIRECT, scopes)
    with c.manager("rec") as tm:
        tm.exchange_code(code, code_verifier=None, via="exchange")
    return build_app(c), gate, c, emulator


def test_a_probe_that_learnt_nothing_says_what_webex_answered(tmp_path: Path) -> None:
    app, gate, _, emulator = signed_in(tmp_path)
    browser = Browser(app, gate)
    emulator.faults.append(Fault("*", "html", count=4))
    browser.post("/profile/rec/probe", {})
    said = notice_of(browser.get("/profile/rec")[2])
    # Was only "Probed 'rec' at Webex: unknown." with nothing to act on or quote.
    assert said.startswith("Probed &#39;rec&#39; at Webex: unknown: ")
    assert "non-JSON body" in said and "trackingId" in said


def test_a_damaged_store_is_the_clis_message_and_fix_not_a_500(tmp_path: Path) -> None:
    app, gate, c, _ = signed_in(tmp_path)
    browser = Browser(app, gate)
    db = Path(c.settings.db_path)
    with db.open("r+b") as f:  # the file's first pages overwritten: a disk fault, say
        f.write(b"\0" * 8192)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    # Was: the exception out of the app (uvicorn: a bare 500 and a traceback on stderr).
    status, _, page = browser.get("/")
    assert status == 503
    assert f"the store {db} is damaged" in notice_of(page)
    assert "restore" in page.split('class="notice-fix">')[1] and "Traceback" not in page


def test_an_existing_name_points_at_the_replace_checkbox_not_the_cli_flag(
    tmp_path: Path,
) -> None:
    app, gate, c, _ = signed_in(tmp_path)
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    browser.post("/wizard/portal", {"redirect_uri": REDIRECT})
    creds = {"client_id": "C" + "4" * 64, "client_secret": "n" * 40}
    browser.post("/wizard/credentials", creds)
    page = browser.get("/wizard/credentials")[2].replace("&#34;", '"')
    assert "a profile named &#39;rec&#39; exists already" in notice_of(page)
    # Was: "... or add --replace to overwrite it whole", a flag the page does not have.
    assert "--replace" not in page
    assert 'tick "Replace a profile of the same name"' in page and 'id="replace"' in page
    status, headers, _ = browser.post("/wizard/credentials", dict(creds, replace="yes"))
    assert status == 303 and headers[b"location"] == b"/wizard/signin?profile=rec"
    assert c.store.get_profile("rec").client_id == "C" + "4" * 64


def test_other_without_scopes_says_which_field_not_which_flag(
    console: tuple[Any, Gate, Console],
) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    status, headers, _ = browser.post("/wizard", {"name": "rec", "preset": "other", "scopes": ""})
    assert status == 303 and headers[b"location"] == b"/wizard"
    page = browser.get("/wizard")[2]
    assert notice_of(page) == "no scopes given for &#34;Other&#34;"
    # Was: "pass --scopes "a b c" or --preset NAME", flags the wizard does not have.
    assert "--scopes" not in page and "in the Scopes field" in page


def test_a_redirect_uri_the_console_cannot_catch_is_flagged_at_the_portal_step(
    console: tuple[Any, Gate, Console],
) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    status, headers, _ = browser.post("/wizard/portal", {"redirect_uri": REDIRECT})
    assert headers[b"location"] == b"/wizard/credentials"
    assert notice_of(browser.get("/wizard/credentials")[2]) == ""
    postman = "https://oauth.pstmn.io/v1/callback"
    status, headers, _ = browser.post("/wizard/portal", {"redirect_uri": postman})
    assert status == 303 and headers[b"location"] == b"/wizard/credentials"  # allowed, but:
    said = notice_of(browser.get("/wizard/credentials")[2])
    assert said.startswith(postman) and "only the sign-in with a code" in said


def test_probe_refresh_and_reveal_at_once_leave_the_token_readable(tmp_path: Path) -> None:
    """Two tabs, a double click, or a keeper refreshing while the admin probes: a probe or a
    hand-off used to write back the record it had read before a refresh that finished in
    between, so the stored token no longer matched its record ("failed its integrity check")
    and only a new sign-in recovered."""
    app, gate, c, _ = signed_in(tmp_path)
    browser = Browser(app, gate)
    csrf = browser.get("/wizard")[2].split('name="csrf" value="')[1].split('"')[0]
    actions = ["refresh", "probe", "export", "mark-current"] * 6
    errors: list[str] = []

    def press(action: str) -> None:
        headers = {
            "Host": "127.0.0.1:8766",
            "Cookie": browser.cookie,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        status, _, _ = call(app, "POST", f"/profile/rec/{action}", headers, f"csrf={csrf}".encode())
        if status >= 500:
            errors.append(f"{action}: {status}")

    threads = [threading.Thread(target=press, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with c.manager("rec") as tm:
        assert tm.access_token()  # was: "the stored access token failed its integrity check"
    assert "integrity" not in browser.get("/profile/rec")[2]


def test_a_probe_beside_a_keepers_refresh_leaves_the_token_readable(tmp_path: Path) -> None:
    """The keeper refreshes under the store's refresh lock, not the console's own: the console's
    probe takes that lock too (direct library refreshes stand in for the keeper here)."""
    from wxtoken.reasons import Forced

    app, gate, c, _ = signed_in(tmp_path)
    browser = Browser(app, gate)

    def keeper() -> None:
        for _ in range(5):
            with c.manager("rec") as tm:
                tm.refresh(Forced(unless_newer_than=None))

    def probe() -> None:
        for _ in range(5):
            browser.post("/profile/rec/probe", {})

    threads = [threading.Thread(target=work) for _ in range(8) for work in (keeper, probe)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with c.manager("rec") as tm:
        assert tm.access_token()


def test_a_new_store_says_what_the_keeper_and_cli_will_need_to_open_it(
    console: tuple[Any, Gate, Console], tmp_path: Path
) -> None:
    app, gate, _ = console
    browser = Browser(app, gate)
    browser.post("/wizard", {"name": "rec", "preset": "verint-calling"})
    browser.post("/wizard/portal", {"redirect_uri": REDIRECT})
    key = tmp_path / "wx.key"
    creds = {"client_id": "C" + "1" * 64, "client_secret": "s" * 40}
    _, headers, _ = browser.post(
        "/wizard/credentials", dict(creds, key_source="keyfile", key_file=str(key))
    )
    assert headers[b"location"] == b"/wizard/signin?profile=rec"
    said = notice_of(browser.get("/wizard/signin?profile=rec")[2])
    # Was only "Profile 'rec' saved": the path chosen here lived only in the console's memory.
    assert f"keeper need WXTOKEN_KEY_FILE={key} in their environment" in said
    # A second profile in the same (no longer new) store: nothing to repeat.
    browser.post("/wizard", {"name": "rec2", "preset": "verint-calling"})
    browser.post("/wizard/portal", {"redirect_uri": REDIRECT})
    browser.post("/wizard/credentials", creds)
    assert "WXTOKEN_KEY_FILE" not in notice_of(browser.get("/wizard/signin?profile=rec2")[2])
