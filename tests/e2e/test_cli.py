"""Every command of the installed `wxtoken`, run as a subprocess against the emulator."""

from __future__ import annotations

import json
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
    wait_until,
)


def test_version_and_help(wx: Wx) -> None:
    """The installed console script answers (each command's help: test_cli_inproc)."""
    out = wx("--version", check=0)
    assert out.stdout.startswith("wxtoken ")
    assert "Exit codes" in wx("--help", check=0).stdout
    assert "Exit codes" in wx("login", "--help", check=0).stdout
    assert wx("no-such-command").returncode == 2


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
    # The listener closed its port right after the one valid callback.
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


def test_webex_unreachable_exits_5(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    emu.stop()
    proc = wx("refresh", "--force", timeout=90)
    assert proc.returncode == 5 and "cannot reach Webex" in proc.stderr


def test_canaries_never_leak(wx: Wx, emulator_factory) -> None:
    """Run the commands (and failures) with a canary secret; scan every output and
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
        # People read durations, not second counts: "only 13h 59m left ... 1157d 9h".
        assert " s left" not in proc.stderr and "--min-valid 1157d 9h" in proc.stderr
        tokens.add(proc.stdout.strip())
    assert len(tokens) == 1 and emu.refreshes(mark) == []
