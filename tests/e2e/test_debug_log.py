"""`--debug` and WXTOKEN_DEBUG=1: one stderr line per HTTP request and per lock wait, and never
a secret, through the installed CLI against the emulator."""

from __future__ import annotations

import json
import re
import subprocess

from tests.conftest import WXTOKEN, Emulator, Wx, assert_no_secret
from tests.e2e.test_waiters import wait_for_lock_holder

LINE = re.compile(
    r"wxtoken: debug: (GET|POST) http://127\.0\.0\.1:\d+(/\S*) -> (\d{3}) in \d+ ms "
    r"\(trackingId (\S+)\)"
)


def requests(stderr: str) -> list[tuple[str, str, int]]:
    return [(m[1], m[2], int(m[3])) for m in LINE.finditer(stderr)]


def test_each_request_is_one_line_and_nothing_secret(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    login = wx.login("rec", "approve")  # a first sign-in, without the log
    assert login.returncode == 0
    refreshed = wx("--debug", "refresh", "--force", check=0)
    assert requests(refreshed.stderr) == [("POST", "/v1/access_token", 200)]
    assert "(trackingId WXTOKEN_" in refreshed.stderr  # Webex echoes the one we sent
    api = wx("--debug", "api", "/v1/people/me", check=0)
    assert requests(api.stderr) == [("GET", "/v1/people/me", 200)]
    token = wx("token", env={"WXTOKEN_DEBUG": "1"}, check=0)  # the env var; no fast path
    assert token.stderr.count("wxtoken: debug:") == 0  # a fresh token needs no request
    verify = wx("verify", env={"WXTOKEN_DEBUG": "1"}, check=0)
    assert ("GET", "/v1/people/me", 200) in requests(verify.stderr)
    secrets = json.loads(wx("export", "--format", "json", check=0).stdout)
    assert_no_secret(
        [refreshed.stderr, api.stderr, token.stderr, verify.stderr],
        [secrets["refresh_token"], secrets["client_secret"], token.stdout.strip()],
    )


def test_a_lock_wait_is_logged(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    emu.fault("delay", delay=2.0, count=1)
    first = subprocess.Popen(
        [WXTOKEN, "refresh", "--force"], env=wx.env, stderr=subprocess.PIPE, text=True
    )
    assert wait_for_lock_holder(wx), "the first refresh never took the profile's lock"
    second = wx("--debug", "refresh", "--force", check=0)
    first.communicate(timeout=60)
    assert re.search(
        r"wxtoken: debug: waited \d+\.\d\d s for the lock of profile 'rec'", second.stderr
    )
