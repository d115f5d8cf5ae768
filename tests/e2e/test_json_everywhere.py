"""Every command that prints a result has --json, and its output parses; `token --format`."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.conftest import WXTOKEN, Emulator, Wx, assert_no_secret, wait_until
from tests.e2e.test_signin_paste import PASTE_REDIRECT, attackers_code


def parsed(wx: Wx, *args: str, check: int = 0, stdin: str | None = None) -> Any:
    proc = wx(*args, "--json", input=stdin, check=check)
    return json.loads(proc.stdout)


def test_each_command_with_json(wx: Wx, emu: Emulator) -> None:
    added = parsed(wx, "profile", "add", "rec", "--client-id", emu.client_id,
                   "--redirect-uri", emu.redirect_uri, "--preset", "verint-calling",
                   "--base-url", emu.base_url, "--client-secret-stdin",
                   stdin=emu.client_secret + "\n")  # fmt: skip
    assert isinstance(added, dict) and added["name"] == "rec"
    assert wx.login("rec", "approve", "--json").returncode == 0
    login = json.loads(wx.outputs[-2])
    assert login["profile"] == "rec" and login["user"]
    assert [p["name"] for p in parsed(wx, "profile", "list")] == ["rec"]
    assert parsed(wx, "profile", "show", "rec")["name"] == "rec"
    changed = parsed(wx, "profile", "set", "rec", "--scopes", " ".join(added["scopes"]))
    assert changed["name"] == "rec"
    tok = parsed(wx, "token")
    assert isinstance(tok, dict) and tok["token_type"] == "Bearer" and tok["expires_in"] > 0
    header = wx("token", "--format", "header", check=0).stdout.strip()
    assert header == f"Authorization: Bearer {tok['access_token']}"
    refreshed = parsed(wx, "refresh", "--force")
    assert refreshed["refreshed"] is True and "access_token" not in refreshed
    [row] = parsed(wx, "status")
    assert row["state"] == "ok"
    assert parsed(wx, "verify")["ok"] is True
    exported = parsed(wx, "export")
    assert set(exported) >= {"client_id", "client_secret", "refresh_token"}
    events = [json.loads(line) for line in wx("log", "--json", check=0).stdout.splitlines()]
    assert {"login", "refresh", "export"} <= {e["kind"] for e in events}
    assert "findings" in parsed(wx, "doctor", "--offline", check=3)
    assert parsed(wx, "logout") == {"profile": "rec", "removed": True}
    assert wx.login("rec").returncode == 0
    revoked = parsed(wx, "revoke", "--yes")
    assert revoked == {"profile": "rec", "revoked": True, "marked": []}
    removed = parsed(wx, "profile", "remove", "rec", "--yes")
    assert isinstance(removed, dict)
    # exchange: a code obtained elsewhere, for a profile with a pasted (non-loopback) redirect
    wx.add_profile(emu, "pasted", redirect_uri=PASTE_REDIRECT, scopes="spark:kms spark:people_read")
    code = attackers_code(emu)
    exchanged = parsed(wx, "exchange", "-p", "pasted", "--code", "-", stdin=code + "\n")
    assert exchanged["profile"] == "pasted" and exchanged["user"]
    api = json.loads(wx("api", "-p", "pasted", "/v1/people/me", check=0).stdout)  # JSON always
    assert api["type"] == "person"


def test_token_formats_from_the_keeper(logged_in: tuple[Wx, Emulator]) -> None:
    wx, _ = logged_in
    keeper = subprocess.Popen(
        [WXTOKEN, "keep", "--metrics-listen", "127.0.0.1:0"], env=wx.env, stderr=subprocess.PIPE
    )
    try:
        assert wait_until((wx.home / "store" / "keeper.sock").exists, timeout=20)
        no_key = {k: v for k, v in wx.env.items() if k != "WXTOKEN_KEY_FILE"}
        got = subprocess.run(
            [WXTOKEN, "token", "--json"], env=no_key, capture_output=True, text=True, timeout=60
        )
        assert got.returncode == 0, got.stderr
        answer = json.loads(got.stdout)
        assert answer["expires_in"] > 0 and answer["expires_at"] > time.strftime("%Y")
        header = subprocess.run(
            [WXTOKEN, "token", "--format", "header"], env=no_key, capture_output=True, text=True
        )
        assert header.stdout.strip() == f"Authorization: Bearer {answer['access_token']}"
    finally:
        keeper.terminate()
        keeper.communicate(timeout=30)
    assert_no_secret([got.stderr, header.stderr], [answer["access_token"]])
