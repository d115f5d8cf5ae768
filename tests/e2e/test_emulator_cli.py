"""`wxtoken emulator` as a user runs it: its request log, `--quiet`, its help, and a state file
that keeps the integration across a restart, even one by `kill -9`."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

from tests.conftest import WXTOKEN, Emulator, Wx, assert_no_secret, canary, wait_until

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LINE = re.compile(
    r"\d\d:\d\d:\d\d (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) "
    r"client=(?P<client>\S+) (?P<outcome>.+)"
)


def connect(emu: Emulator) -> http.client.HTTPConnection:
    u = urllib.parse.urlsplit(emu.base_url)
    return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=10)


def send(
    c: http.client.HTTPConnection,
    method: str,
    path: str,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    body = urllib.parse.urlencode(form) if form is not None else None
    c.request(method, path, body, dict(FORM if form is not None else {}, **(headers or {})))
    r = c.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def sign_in(emu: Emulator, c: http.client.HTTPConnection, state: str) -> tuple[str, dict[str, str]]:
    """A code through /v1/authorize (auto-approved), then the code grant: (code, tokens)."""
    query = urllib.parse.urlencode(
        {
            "client_id": emu.client_id,
            "response_type": "code",
            "redirect_uri": emu.redirect_uri,
            "scope": "spark:kms spark:people_read",
            "state": state,
        }
    )
    status, headers, _ = send(c, "GET", f"/v1/authorize?{query}")
    assert status == 302
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "code": code,
        "redirect_uri": emu.redirect_uri,
    }
    status, _, body = send(c, "POST", "/v1/access_token", form)
    assert status == 200
    return code, json.loads(body)


def logged(emu: Emulator, n: int) -> list[str]:
    assert wait_until(lambda: len(emu.stderr_lines) >= n), emu.stderr_lines
    return [line.rstrip("\n") for line in emu.stderr_lines]


def test_one_log_line_per_request_and_never_a_secret(emulator_factory: Any) -> None:
    emu: Emulator = emulator_factory("--auto-approve")
    c = connect(emu)
    state = canary("state")
    code, tokens = sign_in(emu, c, state)
    refresh = {
        "grant_type": "refresh_token",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "refresh_token": tokens["refresh_token"],
    }
    assert send(c, "POST", "/v1/access_token", refresh)[0] == 200
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert send(c, "GET", "/v1/people/me", headers=bearer)[0] == 200
    # A secret pasted into the client id field: the client id shown is only ever a registered one.
    pasted = canary("pasted")
    assert send(c, "POST", "/v1/access_token", dict(refresh, client_id=pasted))[0] == 401
    assert send(c, "POST", "/v1/access_token", dict(refresh, refresh_token="no-such"))[0] == 400
    # Whatever a client sends as grant_type or path is shown as one harmless word or escaped.
    assert send(c, "POST", "/v1/access_token", dict(refresh, grant_type="a b\nc"))[0] == 400
    assert send(c, "GET", "/v1/no%09such")[0] == 404

    lines = logged(emu, 8)
    assert len(lines) == 8, lines
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    got = [(m["method"], m["path"], m["status"], m["client"], m["outcome"]) for m in parsed if m]
    short = emu.client_id[:13] + "…"
    assert got[:7] == [
        ("GET", "/v1/authorize", "302", short, "outcome=approved"),
        ("POST", "/v1/access_token", "200", short, "grant=authorization_code outcome=ok"),
        ("POST", "/v1/access_token", "200", short, "grant=refresh_token outcome=ok"),
        ("GET", "/v1/people/me", "200", "-", "outcome=ok"),
        (
            "POST",
            "/v1/access_token",
            "401",
            "unknown",
            "grant=refresh_token outcome=invalid_client",
        ),
        (
            "POST",
            "/v1/access_token",
            "400",
            short,
            "grant=refresh_token outcome=invalid_grant cause=unknown",
        ),
        ("POST", "/v1/access_token", "400", "-", "grant=? outcome=unsupported_grant_type"),
    ]
    assert got[7][1:3] == ("'/v1/no\\tsuch'", "404") and "\t" not in lines[7]
    secrets = [emu.client_secret, code, tokens["access_token"], tokens["refresh_token"], pasted]
    assert_no_secret(["".join(emu.stderr_lines)], [*secrets, state])
    # The banner on stdout is untouched: the first line was the JSON the fixture parsed.
    assert emu.info["client_id"] == emu.client_id


def test_quiet_logs_nothing(emulator_factory: Any) -> None:
    emu: Emulator = emulator_factory("--auto-approve", "--quiet")
    c = connect(emu)
    sign_in(emu, c, "s")
    assert send(c, "GET", "/v1/no-such")[0] == 404
    assert emu.stop() == 0
    assert emu.stderr_lines == []


def test_a_full_sign_in_by_the_cli_logs_no_secret(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    assert wx("refresh", "-p", "rec", "--force").returncode == 0
    token = wx("token", "-p", "rec", check=0).stdout.strip()
    assert wx("verify", "-p", "rec").returncode in (0, 1)  # bearer calls: people/me, tokenExpiry
    refresh_token = wx("export", "-p", "rec", check=0).stdout.strip()
    lines = logged(emu, 3)
    assert any(" POST /v1/access_token 200 " in line for line in lines)
    assert any("grant=refresh_token outcome=ok" in line for line in lines)
    assert any(" GET /v1/people/me " in line for line in lines)
    assert_no_secret(["".join(emu.stderr_lines)], [emu.client_secret, token, refresh_token])


def test_help_says_what_the_emulator_is_for(wx: Wx) -> None:
    text = " ".join(wx("emulator", "--help", check=0).stdout.split())
    for words in (
        "stand-in for Webex's OAuth",
        "try wxtoken",
        "tests",
        "your own Webex integration",
        "It is not Webex",
        "loopback",
        "--replace-redirect-uris",
        "--quiet",
    ):
        assert words in text, words


def test_replace_without_a_redirect_uri_is_one_clear_line(wx: Wx) -> None:
    proc = wx("emulator", "--replace-redirect-uris")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") <= 2 and "--redirect-uri" in proc.stderr
    assert "Traceback" not in proc.stderr


def start(state: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [
            WXTOKEN,
            "emulator",
            "--port",
            "0",
            "--json",
            "--quiet",
            "--state-file",
            str(state),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the emulator did not start"
    return proc, json.loads(line)


def test_the_integration_survives_a_kill_before_any_request(tmp_path: Path) -> None:
    home = tmp_path / "emu"
    home.mkdir(mode=0o700)
    state = home / "state.json"
    first, info = start(state)
    first.send_signal(signal.SIGKILL)  # no shutdown save: only what was written at start
    first.wait(10)
    second, again = start(state, "--redirect-uri", "http://127.0.0.1:9/added")
    try:
        for key in ("client_id", "client_secret", "service_app", "org_id"):
            assert again[key] == info[key], key
        uris = again["redirect_uris"]
        assert isinstance(uris, list) and uris[0] == "http://127.0.0.1:9/added"
        assert set(uris[1:]) == set(info["redirect_uris"])
    finally:
        second.terminate()
        assert second.wait(10) == 0
    third, last = start(state)
    third.terminate()
    third.wait(10)
    assert last["client_id"] == info["client_id"]
    assert last["redirect_uris"] == again["redirect_uris"]  # kept, not forgotten
