"""`wxtoken login --device` through the installed CLI against an emulator subprocess, in real
time: approved on the verification page, denied, expired, slowed down, rate-limited, refused
OpenID Connect scopes; and a browser sign-in on a machine without a browser.

The person is a small script: it reads the code from the CLI's stderr and approves or denies
it on the emulator's verification page or through its control API, while the CLI polls. Poll
count and spacing come from the emulator's ledger (one timestamp per request).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.conftest import BROWSER_SCRIPT, WXTOKEN, Emulator, Wx, assert_no_secret, wait_until

CODE = re.compile(r"enter the code\n\n  (\d{6})\n")
DEVICE_LOGIN = "wxtoken login --device -p rec"


class Running:
    """The CLI as a subprocess whose stderr is read as it comes."""

    def __init__(self, wx: Wx, *args: str, env: dict[str, str] | None = None) -> None:
        full = dict(wx.env, **(env or {}))
        self.proc = subprocess.Popen(
            [WXTOKEN, *args],
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wx = wx

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 20) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            m = pattern.search(self.stderr)
            if m:
                found.append(m)
            return m is not None or self.proc.poll() is not None

        assert wait_until(seen, timeout=timeout), self.stderr
        assert found, f"exited {self.proc.returncode} before {pattern.pattern!r}:\n{self.stderr}"
        return found[0]

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        out = self.proc.stdout.read() if self.proc.stdout else ""
        self.wx.outputs += [out, self.stderr]
        return code


def polls(emu: Emulator) -> list[dict[str, Any]]:
    return [e for e in emu.ledger() if e["endpoint"] == "device_token"]


def gaps(entries: list[dict[str, Any]]) -> list[float]:
    return [b["at"] - a["at"] for a, b in itertools.pairwise(entries)]


def approve_on_page(emu: Emulator, user_code: str, decision: str = "approve") -> int:
    """What a person does on the verification page: open it, press the button."""
    with urllib.request.urlopen(f"{emu.base_url}/v1/device/verify?userCode={user_code}") as r:
        assert user_code in r.read().decode()
    form = urllib.parse.urlencode({"userCode": user_code, "decision": decision}).encode()
    with urllib.request.urlopen(f"{emu.base_url}/v1/device/verify", data=form) as r:
        return int(r.status)


def test_approved_on_the_verify_page_then_an_ordinary_grant(
    wx: Wx, emu: Emulator, figure: Any
) -> None:
    wx.add_profile(emu)
    started = time.monotonic()
    cli = Running(wx, "login", "--device", "-p", "rec")
    code = cli.wait_for(CODE).group(1)
    assert wait_until(lambda: len(polls(emu)) >= 2, timeout=15), "the CLI polls meanwhile"
    assert approve_on_page(emu, code) == 200
    assert cli.finish() == 0, cli.stderr
    took = time.monotonic() - started
    text = cli.stderr
    assert "Signed in as Avery Admin <admin@example.com>" in text
    assert f"{emu.base_url}/v1/device/verify" in text and "valid for 5 min" in text
    assert "only if you started it here yourself" in text
    assert "\u2580" not in text and "\u2584" not in text, "no QR code off a terminal"
    seen = polls(emu)
    assert [p["status"] for p in seen][-1] == 200 and set(p["status"] for p in seen[:-1]) == {428}
    assert min(gaps(seen)) >= 2.0 - 0.05, "never faster than the interval of 2 s"
    figure(
        f"device login e2e: {len(seen)} polls, gaps {min(gaps(seen)):.2f}-"
        f"{max(gaps(seen)):.2f} s at interval 2 s, {took:.1f} s in all"
    )
    # The stored grant is an ordinary one from here on.
    wx("refresh", "-p", "rec", "--force", check=0)
    wx("status", "-p", "rec", check=0)
    wx("export", "-p", "rec", check=0)
    assert "via device" in wx("log", "-p", "rec", "--json", check=0).stdout.replace('": "', " ")
    assert_no_secret(wx.outputs[:-1], [emu.client_secret])


def test_denied_exits_4(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    cli = Running(wx, "login", "--device", "-p", "rec")
    code = cli.wait_for(CODE).group(1)
    emu.control("POST", "device", {"user_code": code, "approve": False})
    assert cli.finish() == 4
    last = cli.stderr.strip().splitlines()[-1]
    assert "denied" in last and DEVICE_LOGIN in last


def test_expired_code_exits_4_with_the_command(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    emu.policy(device_ttl=5, device_interval=1)
    started = time.monotonic()
    cli = Running(wx, "login", "--device", "-p", "rec")
    assert cli.finish(30) == 4
    assert time.monotonic() - started < 15
    last = cli.stderr.strip().splitlines()[-1]
    assert "expired" in last and DEVICE_LOGIN in last
    assert "oauth-helper-d.wbx2.com" in last, "names the helper URIs a silent page may lack"
    [authorized] = [e for e in emu.ledger() if e["endpoint"] == "device_authorize"]
    seen = polls(emu)
    assert 3 <= len(seen) <= 5 and all(p["status"] == 428 for p in seen)
    assert seen[-1]["at"] - authorized["at"] < 5, "no poll once the code has expired"


def test_slow_down_adds_five_seconds(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    emu.policy(device_interval=1)
    emu.fault("status", "device_token", status=400, error="slow_down", count=1)
    cli = Running(wx, "login", "--device", "-p", "rec")
    code = cli.wait_for(CODE).group(1)
    assert wait_until(lambda: len(polls(emu)) >= 1, timeout=10)
    emu.control("POST", "device", {"user_code": code, "approve": True})
    assert cli.finish() == 0, cli.stderr
    [authorized] = [e for e in emu.ledger() if e["endpoint"] == "device_authorize"]
    seen = polls(emu)
    assert [p["status"] for p in seen] == [400, 200]
    assert seen[0]["at"] - authorized["at"] >= 1.0 - 0.05
    assert gaps(seen)[0] >= 6.0 - 0.05, "interval 1 s + 5 s after slow_down"
    assert "every 6 s" in cli.stderr


def test_429_retry_after_is_honoured(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    emu.policy(device_interval=1)
    emu.fault("status", "device_token", status=429, retry_after="4", count=1)
    cli = Running(wx, "login", "--device", "-p", "rec")
    code = cli.wait_for(CODE).group(1)
    assert wait_until(lambda: len(polls(emu)) >= 1, timeout=10)
    emu.control("POST", "device", {"user_code": code, "approve": True})
    assert cli.finish() == 0, cli.stderr
    seen = polls(emu)
    assert [p["status"] for p in seen] == [429, 200]
    assert gaps(seen)[0] >= 4.0 - 0.05, "Retry-After 4 s, not the 1 s interval"


def test_oidc_scopes_refused_before_any_request(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, scopes="openid spark:kms spark:people_read")
    mark = emu.mark()
    proc = wx("login", "--device", "-p", "rec")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "OpenID Connect" in last and "openid" in last
    assert 'wxtoken profile set rec --scopes "spark:kms spark:people_read"' in last
    assert emu.ledger(mark) == [], "nothing reached the emulator"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is an X11 notion")
def test_headless_login_offers_device_and_paste_and_still_takes_the_redirect(
    wx: Wx, emu: Emulator
) -> None:
    wx.add_profile(emu)
    env = {"BROWSER": "false"}
    headless = {k: v for k, v in wx.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    wx.env = headless
    cli = Running(wx, "login", "-p", "rec", "--timeout", "30", env=env)
    url = cli.wait_for(re.compile(r"\n  (http://\S+/v1/authorize\?\S+)\n")).group(1)
    cli.wait_for(re.compile(r"--paste -p rec\n"))
    text = cli.stderr
    assert "no browser could be started here" in text and "still waiting" in text
    assert "  sign in with a code from any other device:  wxtoken login --device -p rec" in text
    assert "  or paste the address the browser lands on:  wxtoken login --paste -p rec" in text
    # A browser elsewhere (here: the scripted one) still completes the sign-in.
    browser = subprocess.run(
        [sys.executable, str(BROWSER_SCRIPT), url],
        env={k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert browser.returncode == 0, browser.stderr
    assert cli.finish() == 0, cli.stderr
    assert "Signed in as" in cli.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is an X11 notion")
def test_no_display_and_no_browser_variable_says_so_at_once(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    wx.env = {k: v for k, v in wx.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cli = Running(wx, "login", "-p", "rec", "--timeout", "3")
    cli.wait_for(re.compile(r"no DISPLAY or WAYLAND_DISPLAY"))
    assert cli.finish() != 0
    assert "wxtoken login --device -p rec" in cli.stderr
