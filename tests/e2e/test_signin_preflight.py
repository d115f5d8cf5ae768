"""Before the browser opens, ask Webex once whether it would start this sign-in at all.

A redirect URI that is not registered, or an unknown client id, makes Webex show a 400 page in
the browser and never redirect: without asking first, login waited its whole timeout and then
blamed the network. Any answer that does not name such a problem lets the login go on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Emulator, Wx, free_port, profile_add_args
from tests.e2e.test_signin_browser import recording_browser


def login_watched(wx: Wx, tmp_path: Path, *extra: str) -> tuple[int, str, float, bool]:
    """(exit code, last stderr line, seconds taken, whether a browser was started)."""
    log = tmp_path / "browser-env.jsonl"
    browser = recording_browser(tmp_path, log)
    started = time.monotonic()
    proc = wx(
        "login",
        "-p",
        "rec",
        "--timeout",
        "15",
        *extra,
        env={"BROWSER": f"{sys.executable} {browser} %s"},
    )
    lines = proc.stderr.strip().splitlines() or [""]
    return proc.returncode, lines[-1], time.monotonic() - started, log.exists()


def test_unregistered_redirect_uri_is_named_at_once(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    unregistered = f"http://127.0.0.1:{free_port()}/other"
    wx.add_profile(emu, redirect_uri=unregistered)
    code, line, took, browsed = login_watched(wx, tmp_path)
    assert code == 1, line
    assert "redirect URI" in line and unregistered in line and "not registered" in line
    assert "fix:" in line and "developer.webex.com" in line
    assert took < 10 and not browsed


def test_unknown_client_id_is_named_at_once(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    wx.add_profile(emu)
    unknown = "C" + "1" * 64
    args = profile_add_args(emu)
    args[args.index(emu.client_id)] = unknown
    wx(*args, "--replace", "--client-secret-stdin", input="not-the-secret\n", check=0)
    code, line, took, browsed = login_watched(wx, tmp_path)
    assert code == 1, line
    assert "client id" in line and unknown in line and "--client-id" in line
    assert took < 10 and not browsed


def test_unregistered_scope_is_named_at_once(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    wx.add_profile(emu, scopes="spark:kms spark:not-registered")
    code, line, took, browsed = login_watched(wx, tmp_path)
    assert code == 1, line
    assert "scope" in line and "spark:not-registered" in line and "--scopes" in line
    assert took < 10 and not browsed


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 400},  # a 400 that names nothing we could fix
        {"kind": "status", "status": 503},
        {"kind": "drop"},  # network trouble
    ],
)
def test_any_other_answer_lets_the_login_go_on(
    wx: Wx, emu: Emulator, fault: dict[str, object]
) -> None:
    wx.add_profile(emu)
    emu.fault(endpoint="authorize", count=1, **fault)  # type: ignore[arg-type]
    proc = wx.login()
    assert proc.returncode == 0, proc.stderr
    asked = [e for e in emu.ledger() if e["endpoint"] == "authorize"]
    assert asked[0].get("fault") == fault["kind"], "the check met the fault, then went on"


def test_the_timeout_names_the_likely_causes(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    proc = wx("login", "--no-browser", "--timeout", "2")
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert "within 2 s" in line
    for cause in ("not registered", "another machine", "firewall", "not finished"):
        assert cause in line, cause
