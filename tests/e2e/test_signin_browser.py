"""What the browser gets from `wxtoken login`: no secret in its environment, and the truth.

The browser is another program, with its own helpers, crash reporters and extensions: it must
not inherit the store passphrase or a client secret from wxtoken's environment. And the page it
shows must not say "Signed in" before the tokens are stored.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    BROWSER_SCRIPT,
    WXTOKEN,
    Emulator,
    Wx,
    assert_no_secret,
    canary,
    wait_until,
)
from wxtoken._local import CHILD_EXCLUDED, SECRET_VARIABLES


def recording_browser(directory: Path, log: Path) -> Path:
    """A browser that writes down its environment, then signs in like scripts/browser.py."""
    script = directory / "recording-browser"
    py, real = sys.executable, str(BROWSER_SCRIPT)
    script.write_text(
        f"#!{py}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps(dict(os.environ)) + '\\n')\n"
        f"os.execv({py!r}, [{py!r}, {real!r}, sys.argv[1]])\n"
    )
    script.chmod(0o700)
    return script


@pytest.fixture
def secret_env(wx: Wx, emu: Emulator) -> dict[str, str]:
    """A passphrase store, with the passphrase and the client secret in the environment."""
    wx.env.pop("WXTOKEN_KEY_FILE")
    wx.env["WXTOKEN_PASSPHRASE"] = canary("PASS")
    wx.env["WXTOKEN_CLIENT_SECRET"] = emu.client_secret
    wx.env["WXTOKEN_PROXY_PASSWORD"] = canary("PROXY")  # unused here (loopback), never passed on
    wx.env["PGPASSWORD"] = canary("PGPW")  # libpq's, for a shared store: not the browser's
    wx.add_profile(emu)
    return {name: wx.env[name] for name in (*SECRET_VARIABLES, "PGPASSWORD")}


def assert_clean(log: Path, secrets: dict[str, str]) -> None:
    lines = log.read_text().splitlines()
    assert len(lines) == 1, "the browser was started once"
    seen = json.loads(lines[0])
    assert not set(CHILD_EXCLUDED) & set(seen), "a secret variable reached the browser"
    assert_no_secret([lines[0]], list(secrets.values()))


def test_browser_from_BROWSER_gets_no_secret(
    wx: Wx, secret_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "browser-env.jsonl"
    browser = recording_browser(tmp_path, log)
    proc = wx("login", "-p", "rec", env={"BROWSER": f"{sys.executable} {browser} %s"})
    assert proc.returncode == 0, proc.stderr
    assert_clean(log, secret_env)


def test_platform_browser_gets_no_secret(
    wx: Wx, secret_env: dict[str, str], tmp_path: Path
) -> None:
    """Without BROWSER, Python's webbrowser picks the desktop's opener (xdg-open here)."""
    log = tmp_path / "browser-env.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recording_browser(bin_dir, log).rename(bin_dir / "xdg-open")
    assert "BROWSER" not in wx.env
    proc = wx("login", "-p", "rec", env={"DISPLAY": ":0", "PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    assert_clean(log, secret_env)
    assert os.environ.get("WXTOKEN_PASSPHRASE") is None, "the test process itself is untouched"


def scripted_browser(page_log: Path) -> dict[str, str]:
    return {
        "BROWSER": f"{sys.executable} {BROWSER_SCRIPT} %s",
        "WXTOKEN_BROWSER_LOG": str(page_log),
    }


def pages(page_log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in page_log.read_text().splitlines()]


def test_wrong_client_secret_is_a_failure_page_not_signed_in(
    wx: Wx, emu: Emulator, tmp_path: Path
) -> None:
    wrong = "0" * 64
    wx.add_profile(emu, secret=wrong)
    page_log = tmp_path / "pages.jsonl"
    proc = wx("login", "-p", "rec", env=scripted_browser(page_log))
    assert proc.returncode == 1 and "client id or secret" in proc.stderr
    [page] = pages(page_log)
    assert isinstance(page["status"], int) and page["status"] >= 400
    assert page["title"] != "Signed in" and "Signed in" not in str(page["text"])
    assert "client id or secret" in str(page["text"]), "the page says what failed"
    assert_no_secret([page_log.read_text()], [wrong, emu.client_secret])


def test_signed_in_page_only_once_the_tokens_are_stored(
    wx: Wx, emu: Emulator, tmp_path: Path
) -> None:
    """The browser asks `wxtoken status` the moment its page arrives: the tokens are there.
    (The exchange is slowed down, so a page sent before storing would be caught.)"""
    wx.add_profile(emu)
    seen = tmp_path / "status-when-page-arrived.json"
    page_log = tmp_path / "pages.jsonl"
    browser = tmp_path / "browser-then-status"
    py = sys.executable
    browser.write_text(
        f"#!{py}\n"
        "import subprocess, sys\n"
        f"subprocess.run([{py!r}, {str(BROWSER_SCRIPT)!r}, sys.argv[1]])\n"
        f"st = subprocess.run([{WXTOKEN!r}, 'status', '--json', '-p', 'rec'],\n"
        "                    capture_output=True, text=True)\n"
        f"open({str(seen)!r}, 'w').write(st.stdout)\n"
    )
    browser.chmod(0o700)
    emu.fault("delay", delay=3, count=1)
    proc = wx(
        "login",
        "-p",
        "rec",
        env={"BROWSER": f"{browser} %s", "WXTOKEN_BROWSER_LOG": str(page_log)},
    )
    assert proc.returncode == 0, proc.stderr
    assert wait_until(seen.exists, timeout=30)
    assert json.loads(seen.read_text())[0]["state"] == "ok"
    [page] = pages(page_log)
    assert page["status"] == 200 and page["title"] == "Signed in"
    assert "admin@example.com" in str(page["text"]), "the page says who signed in"


def test_the_key_is_checked_before_the_browser_opens(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    """A store the key cannot open fails at once, not after the person signed in."""
    wx.add_profile(emu)
    another_key = tmp_path / "another.key"
    another_key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    another_key.chmod(0o600)
    log = tmp_path / "browser-env.jsonl"
    browser = recording_browser(tmp_path, log)
    proc = wx(
        "login",
        "-p",
        "rec",
        env={
            "BROWSER": f"{sys.executable} {browser} %s",
            "WXTOKEN_KEY_FILE": str(another_key),
        },
    )
    assert proc.returncode == 6, proc.stderr
    assert "does not open this store" in proc.stderr
    assert not log.exists(), "the browser was never opened"
    assert [e for e in emu.ledger() if e["endpoint"] == "authorize"] == []
