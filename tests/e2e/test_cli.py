"""Every command of the installed `wxtoken`, run as a subprocess against the emulator."""

from __future__ import annotations

import json
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    WXTOKEN,
    Emulator,
    Wx,
    assert_no_secret,
    free_port,
    profile_add_args,
    wait_until,
)


def test_version_and_help(wx: Wx) -> None:
    out = wx("--version", check=0)
    assert out.stdout.startswith("wxtoken ")
    helptext = wx("--help", check=0).stdout
    for word in ("Exit codes", "login", "export", "status", "emulator"):
        assert word in helptext
    for cmd in (
        "login",
        "exchange",
        "token",
        "refresh",
        "status",
        "export",
        "verify",
        "revoke",
        "logout",
        "emulator",
    ):
        assert "Exit codes" in wx(cmd, "--help", check=0).stdout
    assert wx("no-such-command").returncode == 2


def test_profile_lifecycle(wx: Wx, emu: Emulator) -> None:
    assert wx("profile", "list", "--json", check=0).stdout.strip() == "[]"
    wx.add_profile(emu)
    listed = json.loads(wx("profile", "list", "--json", check=0).stdout)
    assert [p["name"] for p in listed] == ["rec"]
    assert listed[0]["scopes"] == [
        "spark:kms",
        "spark:people_read",
        "identity:tokens_write",
        "identity:tokens_read",
        "spark-compliance:recordings_read",
    ]
    shown = json.loads(wx("profile", "show", "rec", "--json", check=0).stdout)
    assert shown["base_url"] == emu.base_url and shown["has_tokens"] is False
    # Existing name without --replace fails (usage) and changes nothing.
    again = wx(
        "profile",
        "add",
        "rec",
        "--client-id",
        "Cother",
        "--redirect-uri",
        emu.redirect_uri,
        "--scopes",
        "spark:kms",
        "--base-url",
        emu.base_url,
        "--client-secret-stdin",
        input="x\n",
    )
    assert again.returncode == 2 and "--replace" in again.stderr
    assert json.loads(wx("profile", "show", "rec", "--json", check=0).stdout)["client_id"] == (
        emu.client_id
    )
    # Removal needs --yes without a terminal.
    assert wx("profile", "remove", "rec").returncode == 2
    wx("profile", "remove", "rec", "--yes", check=0)
    assert wx("profile", "show", "rec").returncode == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--base-url", "http://example.com"], "plain http"),
        (["--base-url", "ftp://127.0.0.1"], "not an http"),
        (["--preset", "nope"], "unknown scope preset"),
        (["--scopes", "a b", "--preset", "verint-calling"], "exactly one"),
    ],
)
def test_profile_add_bad_input(wx: Wx, emu: Emulator, args: list[str], needle: str) -> None:
    base = [
        "profile",
        "add",
        "rec",
        "--client-id",
        emu.client_id,
        "--redirect-uri",
        emu.redirect_uri,
        "--client-secret-stdin",
    ]
    if "--preset" not in args and "--scopes" not in args:
        base += ["--preset", "verint-calling"]
    proc = wx(*base, *args, input="s\n")
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert proc.stderr.count("\n") == 1, "one clear line"
    assert "Traceback" not in proc.stderr


def test_client_secret_never_from_argv(wx: Wx, emu: Emulator) -> None:
    proc = wx(
        *profile_add_args(emu),
        "--client-secret",
        "x",
    )
    assert proc.returncode == 2
    # No stdin, no env, no terminal: a clear refusal rather than a hang.
    proc = wx(
        *profile_add_args(emu),
        input="",
    )
    assert proc.returncode == 2 and "client secret" in proc.stderr
    proc = wx(
        *profile_add_args(emu),
        env={"WXTOKEN_CLIENT_SECRET": emu.client_secret},
        check=0,
    )


def test_login_loopback_consent_approve(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    text = wx.outputs[-1]
    assert "Signed in as Avery Admin <admin@example.com>" in text
    assert emu.info["org_id"] in text
    status = json.loads(wx("status", "--json", check=0).stdout)[0]
    assert status["state"] == "ok"
    assert status["org_id"] == emu.info["org_id"]
    assert status["user"] == "admin@example.com"
    assert status["access_expires_at"].endswith("+00:00")
    # The listener closed its port right after the one valid callback (LB-8).
    port = urllib.parse.urlsplit(emu.redirect_uri).port
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    # PKCE S256 and state went out; the code was redeemed exactly once.
    codes = [e for e in emu.ledger() if e.get("grant_type") == "authorization_code"]
    assert len(codes) == 1 and codes[0]["status"] == 200


def test_login_consent_denied_exits_4(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    proc = wx.login(decision="deny")
    assert proc.returncode == 4, proc.stderr
    assert "access_denied" in proc.stderr and "wxtoken login" in proc.stderr
    assert [e for e in emu.ledger() if e["endpoint"] == "access_token"] == []


def test_login_blocked_integration(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    emu.control("POST", "block", {"client_id": emu.client_id})
    proc = wx.login()
    assert proc.returncode == 4 and "administrator" in proc.stderr


def test_login_port_busy(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    port = urllib.parse.urlsplit(emu.redirect_uri).port
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        proc = wx.login()
    assert proc.returncode == 2 and "--paste" in proc.stderr


def test_login_timeout(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    started = time.monotonic()
    proc = wx("login", "--no-browser", "--timeout", "2")
    assert proc.returncode == 1 and "within 2 s" in proc.stderr
    assert time.monotonic() - started < 10


def _authorize_and_capture(emu: Emulator, url: str) -> str:
    """Follow the authorize URL the way a browser would, returning the redirect target."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        return str(exc.headers["location"])
    raise AssertionError("no redirect")


def test_login_paste_from_pipe(wx: Wx, emulator_factory) -> None:
    emu = emulator_factory("--auto-approve")
    wx.add_profile(emu, redirect_uri="https://oauth.pstmn.io/v1/callback")
    proc = subprocess.Popen(
        [WXTOKEN, "login", "--no-browser"],
        env=wx.env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None and proc.stdin is not None
    url = ""
    while not url:
        line = proc.stderr.readline()
        assert line, "login printed no URL"
        if "/v1/authorize?" in line:
            url = line.strip()
    redirected = _authorize_and_capture(emu, url)
    assert redirected.startswith("https://oauth.pstmn.io/v1/callback?code=")
    out, err = proc.communicate(redirected + "\n", timeout=30)
    assert proc.returncode == 0, err
    assert "Signed in as" in err
    assert out == ""  # login never prints a token
    # Pasting the same URL again is rejected locally: its state belonged to the old attempt.
    again = wx("login", "--no-browser", "--paste", input=redirected + "\n")
    assert again.returncode == 1 and "state" in again.stderr
    codes = [e for e in emu.ledger() if e.get("grant_type") == "authorization_code"]
    assert len(codes) == 1


@pytest.mark.parametrize(
    ("pasted", "needle"),
    [
        ("https://evil.example/v1/callback?code=abc&state=x", "not the profile's redirect"),
        ("https://oauth.pstmn.io/v1/callback?state=zzz&code=abc", "state"),
        ("https://oauth.pstmn.io/v1/callback?error=access_denied", "access_denied"),
        ("", "nothing was pasted"),
        ("<script>alert(1)</script>", "neither"),
    ],
)
def test_login_paste_rejects_bad_input(wx: Wx, emu: Emulator, pasted: str, needle: str) -> None:
    wx.add_profile(emu, redirect_uri="https://oauth.pstmn.io/v1/callback")
    proc = wx("login", "--no-browser", "--paste", input=pasted + "\n")
    assert proc.returncode in (1, 4)
    assert needle in proc.stderr
    assert [e for e in emu.ledger() if e["endpoint"] == "access_token"] == []


def _code(emu: Emulator) -> str:
    query = urllib.parse.urlencode(
        {
            "client_id": emu.client_id,
            "response_type": "code",
            "redirect_uri": emu.redirect_uri,
            "scope": "spark:kms spark:people_read",
        }
    )
    emu.policy(auto_approve=True)
    loc = _authorize_and_capture(emu, f"{emu.base_url}/v1/authorize?{query}")
    emu.policy(auto_approve=False)
    return urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["code"][0]


def test_exchange_code_from_stdin(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    code = _code(emu)
    proc = wx("exchange", "--code", "-", "--json", input=code + "\n", check=0)
    summary = json.loads(proc.stdout)
    assert summary["user"] == "admin@example.com"
    assert summary["missing_scopes"] == [
        "identity:tokens_write",
        "identity:tokens_read",
        "spark-compliance:recordings_read",
    ]
    assert "missing: identity:tokens_write" in proc.stderr
    assert code not in proc.stdout + proc.stderr
    # The same code again: invalid_grant → 4, and the stored tokens are untouched.
    before = json.loads(wx("status", "--json", check=0).stdout)
    again = wx("exchange", "--code", "-", input=code + "\n")
    assert again.returncode == 4 and "already used" in again.stderr
    assert "trackingId ROUTER_" in again.stderr or "trackingId WXTOKEN_" in again.stderr
    assert json.loads(wx("status", "--json", check=0).stdout) == before


def test_exchange_expired_code_and_wrong_secret(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    code = _code(emu)
    emu.advance(301)
    proc = wx("exchange", "--code", "-", input=code + "\n")
    assert proc.returncode == 4 and "expired" in proc.stderr
    wx.add_profile(emu, "rec", "--replace", secret="0" * 64)
    proc = wx("exchange", "--code", "-", input=_code(emu) + "\n")
    assert proc.returncode == 1 and "client id or secret" in proc.stderr


def test_exchange_redirect_uri_not_registered(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, redirect_uri="http://127.0.0.1:1/other")
    proc = wx("exchange", "--code", "-", input=_code(emu) + "\n")
    assert proc.returncode == 1 and "redirect URI" in proc.stderr


def test_token_fast_path_and_min_valid(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    mark = emu.mark()
    first = wx("token", check=0).stdout.strip()
    assert wx("token", check=0).stdout.strip() == first
    assert emu.ledger(mark) == [], "a valid token costs no network"
    # Ask for more validity than any token has: a token obtained moments ago is printed with a
    # warning, not refreshed (refreshing cannot give more; see reasons.RECENT).
    proc = wx("token", "--min-valid", str(30 * 86400), check=0)
    assert proc.stdout.strip() == first
    assert "warning" in proc.stderr and "--min-valid" in proc.stderr
    assert emu.refreshes(mark) == []


def test_refresh_without_force_skips_only_a_recent_refresh(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, emu = logged_in
    mark = emu.mark()
    assert "less than a minute ago" in wx("refresh", check=0).stderr
    assert emu.refreshes(mark) == []
    db = sqlite3.connect(Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db")
    db.execute("UPDATE tokens SET obtained_at = obtained_at - 120")  # signed in 2 minutes ago
    db.commit()
    assert "Refreshed 'rec'" in wx("refresh", check=0).stderr
    assert len(emu.refreshes(mark)) == 1


def test_refresh_and_rotation_warning(wx: Wx, emulator_factory) -> None:
    emu = emulator_factory("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    old = wx("export", check=0).stdout.strip()
    proc = wx("refresh", check=0)
    assert "less than a minute ago" in proc.stderr
    proc = wx("refresh", "--force", check=0)
    assert "NEW refresh token" in proc.stderr and "last export" in proc.stderr
    assert "wxtoken export" in proc.stderr
    new = wx("export", check=0).stdout.strip()
    assert new != old
    assert_no_secret([proc.stdout, proc.stderr], [old, new])


def test_status_exit_codes(wx: Wx, emulator_factory) -> None:
    emu = emulator_factory("--refresh-ttl", str(5 * 86400))
    assert wx("status").returncode == 4  # no profiles at all
    wx.add_profile(emu)
    assert wx("status", "--json").returncode == 4  # never signed in
    assert wx.login().returncode == 0
    assert wx("status").returncode == 3  # 5 days < default 14
    assert wx("status", "--warn-days", "2").returncode == 0
    data = json.loads(wx("status", "--json").stdout)
    assert data[0]["state"] == "warning"
    # Worst of several profiles wins, with and without --json.
    wx.add_profile(emu, "second")
    assert wx("status", "--warn-days", "2").returncode == 4
    assert wx("status", "--json", "--warn-days", "2").returncode == 4
    assert wx("status", "-p", "rec", "--warn-days", "2").returncode == 0
    table = wx("status", "--all", "--warn-days", "2").stdout
    assert "login_required" in table and "key file" in table
    assert f"talks to {emu.base_url}, not Webex" in table
    assert "keeper: not running" in table  # P20: a non-Webex endpoint is visible
    assert json.loads(wx("status", "--json", "-p", "rec").stdout)[0]["base_url"] == emu.base_url


def test_export_formats_and_handoff_record(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    rt = wx("export", check=0).stdout.strip()
    as_json = json.loads(wx("export", "--format", "json", check=0).stdout)
    assert set(as_json) == {"client_id", "client_secret", "refresh_token", "refresh_expires_at"}
    assert as_json["refresh_token"] == rt and as_json["client_secret"] == emu.client_secret
    env_lines = wx("export", "--format", "env", check=0).stdout.splitlines()
    assert all(line.startswith("export ") for line in env_lines)
    parsed = dict(line.removeprefix("export ").split("=", 1) for line in env_lines)
    assert set(parsed) == {
        "WEBEX_CLIENT_ID",
        "WEBEX_CLIENT_SECRET",
        "WEBEX_REFRESH_TOKEN",
        "WEBEX_ACCESS_TOKEN",
    }
    assert shlex.split(parsed["WEBEX_REFRESH_TOKEN"]) == [rt]
    db = sqlite3.connect(Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db")
    rows = db.execute("SELECT detail FROM events WHERE kind='export'").fetchall()
    assert [json.loads(r[0])["format"] for r in rows] == ["refresh-token", "json", "env"]
    everything = " ".join(r[0] for r in db.execute("SELECT detail FROM events"))
    assert_no_secret([everything], [rt, emu.client_secret])


def test_verify(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    data = json.loads(wx("verify", "--json", check=0).stdout)
    assert data["ok"] and data["user"] == "admin@example.com"
    assert data["org_id"] == emu.info["org_id"]
    # A grant lacking profile scopes makes verify fail (exit 1) and name them.
    wx.add_profile(emu, "rec", "--replace")
    db = sqlite3.connect(Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db")
    db.execute("UPDATE profiles SET scopes = scopes || ' spark:calls_read' WHERE name='rec'")
    db.commit()
    proc = wx("verify")
    assert proc.returncode == 1 and "spark:calls_read" in proc.stderr


def test_revoke_and_logout(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    rt = wx("export", check=0).stdout.strip()
    assert wx("revoke").returncode == 2  # needs --yes without a terminal
    wx("revoke", "--yes", check=0)
    assert json.loads(wx("status", "--json").stdout)[0]["state"] == "login_required"
    # Webex no longer honours the refresh token.
    deletes = [e for e in emu.ledger() if e["endpoint"] == "authorizations_delete"]
    assert deletes and deletes[-1]["status"] == 204
    assert emu.control("POST", "revoke", {"token": rt})["revoked"] == 0
    # Logout: local only.
    assert wx.login().returncode == 0
    wx("logout", check=0)
    assert wx("token").returncode == 4
    assert wx("profile", "show", "rec").returncode == 0


def test_revoke_refused_keeps_tokens(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, scopes="spark:kms spark:people_read")
    assert wx.login().returncode == 0
    proc = wx("revoke", "--yes")
    assert proc.returncode == 1 and "403" in proc.stderr
    assert json.loads(wx("status", "--json").stdout)[0]["state"] == "ok"


def test_invalid_grant_marks_login_required_and_keeps_record(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, emu = logged_in
    rt = wx("export", check=0).stdout.strip()
    emu.control("POST", "revoke", {"token": rt})
    proc = wx("refresh", "--force")
    assert proc.returncode == 4 and "wxtoken login" in proc.stderr
    st = json.loads(wx("status", "--json").stdout)[0]
    assert st["state"] == "login_required" and st["refresh_expires_at"] is not None
    assert wx("token").returncode == 4
    db = sqlite3.connect(Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db")
    assert db.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
    # One refresh attempt, no loop.
    assert len([e for e in emu.refreshes() if e["status"] == 400]) == 1


@pytest.mark.parametrize(
    ("fault", "code", "needle"),
    [
        ({"kind": "html", "status": 502, "count": 10}, 5, "Webex is failing"),
        ({"kind": "truncated", "count": 10}, 5, "not valid JSON"),
        ({"kind": "incomplete", "count": 10}, 5, "no access_token"),
        ({"kind": "huge", "count": 10}, 5, "too large"),
        ({"kind": "status", "status": 503, "count": 10}, 5, "Webex is failing"),
        (
            {"kind": "status", "status": 429, "retry_after": "3600", "count": 10},
            5,
            "try again after 3600 s",
        ),
    ],
)
def test_refresh_bad_server_responses(
    logged_in: tuple[Wx, Emulator], fault: dict[str, object], code: int, needle: str
) -> None:
    wx, emu = logged_in
    rt = wx("export", check=0).stdout.strip()
    emu.fault(**fault)  # type: ignore[arg-type]
    proc = wx("refresh", "--force", timeout=90)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    emu.control("DELETE", "faults")
    assert wx("export", check=0).stdout.strip() == rt, "nothing lost"
    assert json.loads(wx("status", "--json").stdout)[0]["failures"] >= 1


def test_webex_unreachable_exits_5(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    emu.stop()
    proc = wx("refresh", "--force", timeout=90)
    assert proc.returncode == 5 and "cannot reach Webex" in proc.stderr


def test_store_errors_exit_6(logged_in: tuple[Wx, Emulator], tmp_path: Path) -> None:
    wx, _ = logged_in
    home = Path(wx.env["WXTOKEN_HOME"])
    home.chmod(0o755)
    proc = wx("token")
    assert proc.returncode == 6 and f"chmod 700 {home}" in proc.stderr
    home.chmod(0o700)
    other_key = tmp_path / "other.key"
    proc = wx("token", env={"WXTOKEN_KEY_FILE": str(other_key)})
    assert proc.returncode == 6
    proc = wx("token", env={"WXTOKEN_KEY_FILE": "", "WXTOKEN_PASSPHRASE": "x"})
    assert proc.returncode == 6 and "WXTOKEN_KEY_FILE" in proc.stderr
    proc = wx("token", env={"WXTOKEN_PASSPHRASE": "x"})
    assert proc.returncode == 2 and "both" in proc.stderr
    wx("token", check=0)


def test_canaries_never_leak(wx: Wx, emulator_factory) -> None:
    """LG-1/LG-4: run the commands (and failures) with a canary secret; scan every output and
    the process list while they run."""
    emu = emulator_factory("--rotate", "always")
    secret = emu.client_secret
    wx.add_profile(emu)
    seen_argv: list[str] = []
    stop = threading.Event()

    def sample_argv() -> None:
        while not stop.is_set():
            for p in Path("/proc").iterdir():
                if p.name.isdigit():
                    try:
                        seen_argv.append((p / "cmdline").read_bytes().decode("utf-8", "replace"))
                    except OSError:
                        pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample_argv, daemon=True)
    sampler.start()
    try:
        assert wx.login().returncode == 0
        rt = json.loads(wx("export", "--format", "json", check=0).stdout)["refresh_token"]
        access = wx("token", check=0).stdout.strip()
        wx.outputs.clear()
        for args in (
            ["status"],
            ["status", "--json"],
            ["verify", "--json"],
            ["refresh"],
            ["refresh", "--force"],
            ["profile", "show", "rec"],
            ["profile", "list", "--json"],
            ["token", "--min-valid", "99999999"],
        ):
            wx(*args)
        emu.fault("html", status=502, count=4)
        wx("refresh", "--force")
        emu.fault("truncated", count=4)
        wx("refresh", "--force")
        new_rt = json.loads(wx("export", "--format", "json", check=0).stdout)["refresh_token"]
        wx.outputs = wx.outputs[:-2]  # export prints secrets on purpose; scan everything else
    finally:
        stop.set()
        sampler.join()
    db_text = (
        sqlite3.connect(Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db")
        .execute("SELECT group_concat(detail) FROM events")
        .fetchone()[0]
    )
    wxtoken_argv = [a for a in seen_argv if "wxtoken" in a and "emulator" not in a]
    assert wxtoken_argv, "the sampler saw the commands run"
    assert_no_secret(wx.outputs + wxtoken_argv + [db_text], [secret, rt, access, new_rt])


def test_no_traceback_on_corrupt_store(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not sqlite" * 100)
    proc = wx("status")
    assert proc.returncode == 6 and "damaged" in proc.stderr and "Traceback" not in proc.stderr


def test_emulator_command_exits_cleanly(wx: Wx) -> None:
    proc = subprocess.Popen(
        [WXTOKEN, "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("Webex emulator listening on http://127.0.0.1:")
    assert wait_until(lambda: "Ctrl-C" in proc.stdout.readline())
    proc.terminate()
    assert proc.wait(10) == 0
    proc = subprocess.Popen(
        [WXTOKEN, "emulator", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith("{")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    bad = wx("emulator", "--host", "0.0.0.0", "--control")
    assert bad.returncode == 2 and "loopback" in bad.stderr
    assert wx("emulator", "--rotate", "sometimes").returncode == 2


def test_state_file_survives_restart(wx: Wx, tmp_path: Path) -> None:
    state = tmp_path / "emu-state.json"
    port = free_port()
    args = [
        WXTOKEN,
        "emulator",
        "--port",
        "0",
        "--json",
        "--state-file",
        str(state),
        "--redirect-uri",
        f"http://127.0.0.1:{port}/callback",
    ]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    info = json.loads(first.stdout.readline())  # type: ignore[union-attr]
    emu = Emulator(first, info, f"http://127.0.0.1:{port}/callback")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    first.terminate()
    assert first.wait(10) == 0
    second = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    info2 = json.loads(second.stdout.readline())  # type: ignore[union-attr]
    try:
        assert info2["client_id"] == info["client_id"]
        wx(
            "profile",
            "add",
            "rec",
            "--client-id",
            info2["client_id"],
            "--redirect-uri",
            emu.redirect_uri,
            "--preset",
            "verint-calling",
            "--base-url",
            info2["base_url"],
            "--client-secret-stdin",
            "--replace",
            input=info2["client_secret"] + "\n",
            check=0,
        )
        # Same client id → tokens kept; the restarted emulator still honours them.
        wx("refresh", "--force", check=0)
    finally:
        second.terminate()
        second.wait(10)


def test_python_is_the_one_in_use() -> None:
    assert Path(WXTOKEN).exists(), "the installed wxtoken console script"
    assert sys.version_info >= (3, 11)


def test_rotation_warned_whichever_command_refreshes(wx: Wx, emulator_factory) -> None:
    emu = emulator_factory("--rotate", "always", "--access-ttl", "2")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    wx("export", "--format", "env", check=0)
    time.sleep(2.5)  # the access token has expired: `token` refreshes, and Webex rotates
    proc = wx("token", check=0)
    assert "NEW refresh token" in proc.stderr and "format env" in proc.stderr


def test_other_owner_refused(logged_in: tuple[Wx, Emulator]) -> None:
    import os

    wx, _ = logged_in
    if os.geteuid() != 0:
        pytest.skip("needs root to give the store to another user")
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    os.chown(db, 65534, 65534)
    proc = wx("status")
    assert proc.returncode == 6 and "uid 65534" in proc.stderr
    os.chown(db, 0, 0)
    wx("status", check=0)


def test_shell_completion(wx: Wx) -> None:
    proc = wx(env={"_WXTOKEN_COMPLETE": "bash_source"})
    assert proc.returncode == 0 and "_wxtoken_completion" in proc.stdout


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("base_url", None),  # pointed at another server: filled in below
        ("redirect_uri", "http://127.0.0.1:9/stolen"),
        ("scopes", "spark:all"),
        ("kind", "service-app"),
    ],
)
def test_editing_where_secrets_go_without_the_key_is_refused(
    logged_in: tuple[Wx, Emulator], emulator_factory: Any, column: str, value: str | None
) -> None:
    """The database file needs no key to edit. Redirecting a profile there must not send the
    client secret or refresh token anywhere: the secret is sealed with those settings."""
    wx, emu = logged_in
    other = emulator_factory()
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE profiles SET {column} = ?", (value or other.base_url,))
    proc = wx("refresh", "--force")
    assert proc.returncode == 6 and "integrity check" in proc.stderr, proc.stderr
    assert other.ledger() == []
    assert [e for e in emu.ledger() if e.get("grant_type") == "refresh_token"] == []


def test_min_valid_beyond_the_lifetime_does_not_refresh_every_call(
    logged_in: tuple[Wx, Emulator],
) -> None:
    """--min-valid above any token's lifetime: a token obtained moments ago is handed out (with
    a warning), not refreshed again on every call."""
    wx, emu = logged_in
    mark = emu.mark()
    tokens = set()
    for _ in range(10):
        proc = wx("token", "--min-valid", "100000000", check=0)
        assert "less than --min-valid" in proc.stderr
        tokens.add(proc.stdout.strip())
    assert len(tokens) == 1 and emu.refreshes(mark) == []
