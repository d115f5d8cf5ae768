"""The console under review: what an attacker or a first-time admin did to it, each a defect
that was found and fixed, replayed through the whole ASGI stack (the same `Browser` as
tests/test_console_inproc.py)."""

from __future__ import annotations

from typing import Any

from tests.test_console_inproc import Browser, console
from wxtoken.console.app import Console
from wxtoken.console.security import Gate

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
