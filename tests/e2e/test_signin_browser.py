"""What the browser gets from `wxtoken login`: no secret in its environment, and the truth.

The browser is another program, with its own helpers, crash reporters and extensions: it must
not inherit the store passphrase or a client secret from wxtoken's environment. And the page it
shows must not say "Signed in" before the tokens are stored.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import BROWSER_SCRIPT, Emulator, Wx, assert_no_secret, canary
from wxtoken._local import SECRET_VARIABLES


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
    wx.add_profile(emu)
    return {name: wx.env[name] for name in SECRET_VARIABLES}


def assert_clean(log: Path, secrets: dict[str, str]) -> None:
    lines = log.read_text().splitlines()
    assert len(lines) == 1, "the browser was started once"
    seen = json.loads(lines[0])
    assert not set(SECRET_VARIABLES) & set(seen), "a secret variable reached the browser"
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
