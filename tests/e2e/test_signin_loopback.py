"""A `localhost` redirect URI: browsers may send the code to [::1] as readily as to 127.0.0.1.

wxtoken must hold both loopback addresses for such a URI (RFC 8252 §8.3), or another local user
listening on [::1]:PORT receives the authorization code.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BROWSER_SCRIPT, Emulator, Wx, free_port
from tests.e2e.test_signin_browser import recording_browser


@pytest.fixture
def localhost_emu(emulator_factory) -> Emulator:
    port = free_port()
    emu: Emulator = emulator_factory("--redirect-uri", f"http://localhost:{port}/callback")
    emu.redirect_uri = f"http://localhost:{port}/callback"
    return emu


def authorize_requests(emu: Emulator) -> list[dict[str, object]]:
    return [e for e in emu.ledger() if e["endpoint"] == "authorize"]


def test_callback_over_ipv6_reaches_wxtoken(wx: Wx, localhost_emu: Emulator) -> None:
    wx.add_profile(localhost_emu)
    proc = wx(
        "login",
        "-p",
        "rec",
        "--timeout",
        "20",
        env={
            "BROWSER": f"{sys.executable} {BROWSER_SCRIPT} %s",
            "WXTOKEN_BROWSER_LOOPBACK": "::1",
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert "Signed in as" in proc.stderr
    codes = [e for e in localhost_emu.ledger() if e.get("grant_type") == "authorization_code"]
    assert len(codes) == 1 and codes[0]["status"] == 200


def test_squatter_on_ipv6_stops_login_before_the_browser(
    wx: Wx, localhost_emu: Emulator, tmp_path: Path
) -> None:
    wx.add_profile(localhost_emu)
    port = int(localhost_emu.redirect_uri.split(":")[2].split("/")[0])
    log = tmp_path / "browser.jsonl"
    browser = recording_browser(tmp_path, log)
    with socket.socket(socket.AF_INET6) as squatter:
        squatter.bind(("::1", port))
        squatter.listen()
        started = time.monotonic()
        proc = wx("login", "-p", "rec", env={"BROWSER": f"{sys.executable} {browser} %s"})
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"[::1]:{port}" in line and f"pid {os.getpid()}" in line and "fix:" in line
    assert time.monotonic() - started < 15
    assert not log.exists(), "the browser was never opened"
    assert authorize_requests(localhost_emu) == []
