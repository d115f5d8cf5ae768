"""CLI behaviour in process: every command's output, exit code and store effect, against the
emulator through its transport (no subprocess, no socket). What only a real process shows (the
console script, the hot path, signals, argv, the browser and loopback listener, a closed port)
stays in tests/e2e."""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.cli_inproc import Cli, cli_fixture
from tests.conftest import assert_no_secret

pytest_plugins = ["tests.cli_fixtures"]


def db(c: Cli) -> sqlite3.Connection:
    return sqlite3.connect(Path(c.env["WXTOKEN_HOME"]) / "wxtoken.db")


def test_help_names_exit_codes_everywhere(c: Cli) -> None:
    helptext = c("--help", check=0).stdout
    for word in ("Exit codes", "login", "export", "status", "emulator"):
        assert word in helptext
    for cmd in ("login", "exchange", "token", "refresh", "status", "export", "verify", "revoke",
                "logout", "emulator", "keep"):  # fmt: skip
        assert "Exit codes" in c(cmd, "--help", check=0).stdout
    for sub in ("add", "set"):
        assert "Exit codes" in c("profile", sub, "--help", check=0).stdout
    assert c("no-such-command").returncode == 2


def test_profile_lifecycle(c: Cli) -> None:
    assert c("profile", "list", "--json", check=0).stdout.strip() == "[]"
    c.add_profile()
    listed = json.loads(c("profile", "list", "--json", check=0).stdout)
    assert [p["name"] for p in listed] == ["rec"]
    assert listed[0]["scopes"] == [
        "spark:kms",
        "spark:people_read",
        "identity:tokens_write",
        "identity:tokens_read",
        "spark-compliance:recordings_read",
    ]
    shown = json.loads(c("profile", "show", "rec", "--json", check=0).stdout)
    assert shown["base_url"] == c.e.base_url and shown["has_tokens"] is False
    assert shown["kind"] == "integration"
    # Existing name without --replace fails (usage) and changes nothing.
    again = c(
        "profile", "add", "rec", "--client-id", "Cother", "--redirect-uri", c.e.redirect_uri,
        "--scopes", "spark:kms", "--base-url", c.e.base_url, "--client-secret-stdin",
        input="x\n",
    )  # fmt: skip
    assert again.returncode == 2 and "--replace" in again.stderr
    assert "wxtoken profile set rec" in again.stderr
    shown = json.loads(c("profile", "show", "rec", "--json", check=0).stdout)
    assert shown["client_id"] == c.e.client_id
    # Removal needs --yes without a terminal.
    assert c("profile", "remove", "rec").returncode == 2
    c("profile", "remove", "rec", "--yes", check=0)
    assert c("profile", "show", "rec").returncode == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--base-url", "http://example.com"], "plain http"),
        (["--base-url", "ftp://127.0.0.1"], "not an http"),
        (["--preset", "nope"], "unknown scope preset"),
        (["--scopes", "a b", "--preset", "verint-calling"], "exactly one"),
    ],
)
def test_profile_add_bad_input(c: Cli, args: list[str], needle: str) -> None:
    base = ["profile", "add", "rec", "--client-id", c.e.client_id, "--redirect-uri",
            c.e.redirect_uri, "--client-secret-stdin"]  # fmt: skip
    if "--preset" not in args and "--scopes" not in args:
        base += ["--preset", "verint-calling"]
    proc = c(*base, *args, input="s\n")
    assert proc.returncode == 2 and needle in proc.stderr
    assert proc.stderr.count("\n") == 1, "one clear line"


def test_client_secret_is_never_an_argument(c: Cli) -> None:
    base = ["profile", "add", "rec", "--client-id", c.e.client_id, "--redirect-uri",
            c.e.redirect_uri, "--preset", "verint-calling", "--base-url", c.e.base_url]  # fmt: skip
    assert c(*base, "--client-secret", "x").returncode == 2
    # No stdin, no env, no terminal: a clear refusal (with the exact command to paste).
    proc = c(*base, input="")
    assert proc.returncode == 2 and "client secret" in proc.stderr
    assert "--client-secret-stdin" in proc.stderr and shlex.join(base[3:5]) in proc.stderr
    c(*base, env={"WXTOKEN_CLIENT_SECRET": c.e.client_secret}, check=0)


def test_exchange_code_from_stdin(c: Cli) -> None:
    c.add_profile()
    code = c.code(scopes=("spark:kms", "spark:people_read"))
    proc = c("exchange", "--code", "-", "--json", input=code + "\n", check=0)
    summary = json.loads(proc.stdout)
    assert summary["user"] == "admin@example.com"
    assert summary["missing_scopes"] == [
        "identity:tokens_write",
        "identity:tokens_read",
        "spark-compliance:recordings_read",
    ]
    assert "missing: identity:tokens_write" in proc.stderr
    assert code not in proc.stdout + proc.stderr
    # The same code again: invalid_grant is 4, and the stored tokens are untouched.
    before = json.loads(c("status", "--json").stdout)
    again = c("exchange", "--code", "-", input=code + "\n")
    assert again.returncode == 4 and "already used" in again.stderr
    assert "trackingId" in again.stderr and "wxtoken login -p rec" in again.stderr
    assert json.loads(c("status", "--json").stdout) == before


def test_exchange_expired_code_and_wrong_secret(c: Cli) -> None:
    c.add_profile()
    code = c.code()
    c.e.advance(301)
    proc = c("exchange", "--code", "-", input=code + "\n")
    assert proc.returncode == 4 and "expired" in proc.stderr
    c.add_profile("rec", "--replace", secret="0" * 64)
    proc = c("exchange", "--code", "-", input=c.code() + "\n")
    assert proc.returncode == 1 and "client id or secret" in proc.stderr
    assert "wxtoken profile set rec --client-secret-stdin" in proc.stderr


def test_exchange_redirect_uri_not_registered(c: Cli) -> None:
    c.add_profile(redirect_uri="http://127.0.0.1:1/other")
    proc = c("exchange", "--code", "-", input=c.code() + "\n")
    assert proc.returncode == 1 and "redirect URI" in proc.stderr


def test_refresh_without_force_skips_only_a_recent_refresh(signed_in: Cli) -> None:
    c = signed_in
    mark = c.e.mark()
    assert "less than a minute ago" in c("refresh", check=0).stderr
    assert c.e.refreshes(mark) == []
    c.e.advance(120)  # signed in two minutes ago
    assert "Refreshed 'rec'" in c("refresh", check=0).stderr
    assert len(c.e.refreshes(mark)) == 1


def test_refresh_and_rotation_warning(tmp_path: Path) -> None:
    for c in cli_fixture(tmp_path, rotate="always"):
        c.add_profile()
        c.sign_in()
        old = c("export", check=0).stdout.strip()
        assert "less than a minute ago" in c("refresh", check=0).stderr
        proc = c("refresh", "--force", check=0)
        assert "NEW refresh token" in proc.stderr and "last export" in proc.stderr
        assert "wxtoken export -p rec" in proc.stderr
        new = c("export", check=0).stdout.strip()
        assert new != old
        assert_no_secret([proc.stdout, proc.stderr], [old, new])


def test_status_exit_codes(tmp_path: Path) -> None:
    for c in cli_fixture(tmp_path, refresh_ttl=5 * 86400):
        assert c("status").returncode == 4  # no profiles at all
        c.add_profile()
        assert c("status", "--json").returncode == 4  # never signed in
        c.sign_in()
        assert c("status").returncode == 3  # 5 days < default 14
        assert c("status", "--warn-days", "2").returncode == 0
        assert json.loads(c("status", "--json").stdout)[0]["state"] == "warning"
        # Worst of several profiles wins, with and without --json.
        c.add_profile("second")
        assert c("status", "--warn-days", "2").returncode == 4
        assert c("status", "--json", "--warn-days", "2").returncode == 4
        assert c("status", "-p", "rec", "--warn-days", "2").returncode == 0
        table = c("status", "--all", "--warn-days", "2").stdout
        assert "login_required" in table and "key file" in table
        assert f"talks to {c.e.base_url}, not Webex" in table  # a non-Webex endpoint shows
        assert "keeper: not running" in table
        status = json.loads(c("status", "--json", "-p", "rec").stdout)[0]
        assert status["base_url"] == c.e.base_url


def test_export_formats_and_handoff_record(signed_in: Cli) -> None:
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    as_json = json.loads(c("export", "--format", "json", check=0).stdout)
    assert set(as_json) == {"client_id", "client_secret", "refresh_token", "refresh_expires_at"}
    assert as_json["refresh_token"] == rt and as_json["client_secret"] == c.e.client_secret
    env_lines = c("export", "--format", "env", check=0).stdout.splitlines()
    assert all(line.startswith("export ") for line in env_lines)
    parsed = dict(line.removeprefix("export ").split("=", 1) for line in env_lines)
    assert set(parsed) == {
        "WEBEX_CLIENT_ID",
        "WEBEX_CLIENT_SECRET",
        "WEBEX_REFRESH_TOKEN",
        "WEBEX_ACCESS_TOKEN",
    }
    assert shlex.split(parsed["WEBEX_REFRESH_TOKEN"]) == [rt]
    rows = db(c).execute("SELECT detail FROM events WHERE kind='export'").fetchall()
    assert [json.loads(r[0])["format"] for r in rows] == ["refresh-token", "json", "env"]
    everything = " ".join(r[0] for r in db(c).execute("SELECT detail FROM events"))
    assert_no_secret([everything], [rt, c.e.client_secret])


def test_verify(signed_in: Cli) -> None:
    c = signed_in
    data = json.loads(c("verify", "--json", check=0).stdout)
    assert data["ok"] and data["user"] == "admin@example.com"
    assert data["org_id"] == c.e.info["org_id"]
    # A grant lacking profile scopes makes verify fail (exit 1) and name them.
    c("profile", "set", "rec", "--scopes", "spark:kms spark:people_read spark:calls_read", check=0)
    proc = c("verify")
    assert proc.returncode == 1 and "spark:calls_read" in proc.stderr


def test_revoke_and_logout(signed_in: Cli) -> None:
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    assert c("revoke").returncode == 2  # needs --yes without a terminal
    c("revoke", "--yes", check=0)
    assert json.loads(c("status", "--json").stdout)[0]["state"] == "login_required"
    deletes = [e for e in c.e.ledger() if e["endpoint"] == "authorizations_delete"]
    assert deletes and deletes[-1]["status"] == 204
    assert c.e.control("POST", "revoke", {"token": rt})["revoked"] == 0  # already dead
    # Logout: local only.
    c.sign_in()
    c("logout", check=0)
    assert c("token").returncode == 4
    assert c("profile", "show", "rec").returncode == 0


def test_revoke_refused_keeps_tokens(c: Cli) -> None:
    c.add_profile(scopes="spark:kms spark:people_read")
    c("exchange", "--code", "-", input=c.code(("spark:kms", "spark:people_read")) + "\n", check=0)
    proc = c("revoke", "--yes")
    assert proc.returncode == 1 and "403" in proc.stderr
    assert json.loads(c("status", "--json").stdout)[0]["state"] == "ok"


def test_invalid_grant_marks_login_required_and_keeps_record(signed_in: Cli) -> None:
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    c.e.control("POST", "revoke", {"token": rt})
    proc = c("refresh", "--force")
    assert proc.returncode == 4 and "wxtoken login -p rec" in proc.stderr
    st = json.loads(c("status", "--json").stdout)[0]
    assert st["state"] == "login_required" and st["refresh_expires_at"] is not None
    assert c("token").returncode == 4
    assert db(c).execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
    assert len([e for e in c.e.refreshes() if e["status"] == 400]) == 1, "one attempt, no loop"


@pytest.mark.parametrize(
    ("fault", "code", "needle"),
    [
        ({"kind": "html", "status": 502, "count": 10}, 5, "Webex is failing"),
        ({"kind": "truncated", "count": 10}, 5, "not valid JSON"),
        ({"kind": "malformed", "count": 10}, 5, "not valid JSON"),
        ({"kind": "incomplete", "count": 10}, 5, "no access_token"),
        ({"kind": "huge", "count": 10}, 5, "too large"),
        ({"kind": "status", "status": 503, "count": 10}, 5, "Webex is failing"),
        (
            {"kind": "status", "status": 429, "retry_after": "3600", "count": 10},
            5,
            "try again after 3600 s",
        ),
        ({"kind": "drop", "count": 10}, 5, "cannot reach Webex"),
    ],
)
def test_refresh_bad_server_responses(
    signed_in: Cli, fault: dict[str, Any], code: int, needle: str
) -> None:
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    c.e.control("POST", "faults", dict(fault, endpoint="access_token"))
    proc = c("refresh", "--force")
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr and proc.stderr.count("\n") == 1
    c.e.control("DELETE", "faults")
    assert c("export", check=0).stdout.strip() == rt, "nothing lost"
    assert json.loads(c("status", "--json").stdout)[0]["failures"] >= 1


def test_store_errors_exit_6(signed_in: Cli, tmp_path: Path) -> None:
    c = signed_in
    home = Path(c.env["WXTOKEN_HOME"])
    home.chmod(0o755)
    proc = c("token")
    assert proc.returncode == 6 and f"chmod 700 {home}" in proc.stderr
    home.chmod(0o700)
    proc = c("token", env={"WXTOKEN_KEY_FILE": str(tmp_path / "other.key")})
    assert proc.returncode == 6
    proc = c("token", env={"WXTOKEN_KEY_FILE": "", "WXTOKEN_PASSPHRASE": "x"})
    assert proc.returncode == 6 and "WXTOKEN_KEY_FILE" in proc.stderr
    proc = c("token", env={"WXTOKEN_PASSPHRASE": "x"})
    assert proc.returncode == 2 and "both" in proc.stderr
    c("token", check=0)
