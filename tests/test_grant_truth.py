"""What wxtoken knows about a grant beyond its local copy: live probes and their causes, a
revocation that reaches sibling profiles, the recorder's copy, the expiry trend, the event log.
In process, against the emulator on its clock."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_inproc import Cli, cli_fixture
from tests.conftest import assert_no_secret

pytest_plugins = ["tests.cli_fixtures"]

DAY = 86400


def status_json(c: Cli, *args: str) -> dict[str, object]:
    rows = json.loads(c("status", "--json", *args).stdout)
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert isinstance(row, dict)
    return row


def test_probe_finds_a_live_grant_and_status_shows_its_age(signed_in: Cli) -> None:
    c = signed_in
    mark = c.e.mark()
    assert c("status", "--probe").returncode == 0
    assert c.e.refreshes(mark) == [], "a probe never refreshes"
    c.e.advance(3600)
    row = status_json(c)  # no --probe: no key, no network, the last result and its age
    probe = row["probe"]
    assert isinstance(probe, dict)
    assert probe["verdict"] == "alive" and probe["endpoint"] == "tokenExpiry"
    assert probe["age_seconds"] == 3600
    assert "last probe 1h 00m ago: alive" in c("status").stdout


def test_a_grant_revoked_at_webex_is_found_by_a_probe(signed_in: Cli) -> None:
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    c.e.control("POST", "revoke", {"token": rt})
    assert c("status").returncode == 0, "without a probe, nothing is known yet"
    proc = c("status", "--probe")
    assert proc.returncode == 4
    assert "Webex no longer accepts the grant" in proc.stdout
    assert "fix: wxtoken login -p rec" in proc.stdout
    row = status_json(c)
    assert row["state"] == "login_required" and row["cause"] == "revoked"
    probe = row["probe"]
    assert (
        isinstance(probe, dict)
        and probe["verdict"] == "dead"
        and "trackingId" in str(probe["detail"])
    )
    assert c("token").returncode == 4, "never a dead token"


def test_revoke_names_and_marks_sibling_profiles(c: Cli) -> None:
    c.add_profile("a")
    c.add_profile("b")
    c.sign_in("a")
    c.sign_in("b")
    refused = c("revoke", "-p", "a")
    assert refused.returncode == 2 and "b" in refused.stderr.split("ends the grants of: ")[1]
    proc = c("revoke", "-p", "a", "--yes", check=0)
    assert "Marked login_required (revoked with it): b" in proc.stderr
    assert c("status", "-p", "b").returncode == 4
    assert status_json(c, "-p", "b")["cause"] == "revoked_by_sibling"
    assert "revoked by `wxtoken revoke -p a`" in str(status_json(c, "-p", "b")["reason"])
    assert c("token", "-p", "b").returncode == 4


def test_the_recorders_copy_goes_stale_on_rotation_and_back_on_export(tmp_path: Path) -> None:
    for c in cli_fixture(tmp_path, rotate="always"):
        c.add_profile()
        c.sign_in()
        assert status_json(c)["recorder_copy"] == {
            "state": "none",
            "exported_at": None,
            "format": None,
            "stale_since": None,
            "reason": None,
        }
        c("export", "--format", "json", check=0)
        assert status_json(c)["recorder_copy"]["state"] == "current"  # type: ignore[index]
        c("refresh", "--force", check=0)  # Webex rotates the refresh token
        proc = c("status")
        assert proc.returncode == 3 and "stale" in proc.stdout
        copy = status_json(c)["recorder_copy"]
        assert isinstance(copy, dict) and copy["state"] == "stale"
        assert "Webex rotated the refresh token" in copy["reason"]
        c("export", check=0)
        assert c("status").returncode == 0
        # A new sign-in over an exported grant: stale again.
        c.sign_in()
        assert c("status").returncode == 3
        assert "new sign-in" in str(status_json(c)["recorder_copy"])
        # The admin updated the recorder by other means: nothing printed, copy current.
        marked = c("export", "--mark-current", check=0)
        assert marked.stdout == "" and c("status").returncode == 0


def test_fixed_and_sliding_expiry_are_told_apart_over_days(tmp_path: Path) -> None:
    for policy, expected in (("fixed", "fixed"), ("sliding", "slides")):
        for c in cli_fixture(tmp_path / policy, refresh_expiry=policy):
            c.add_profile()
            c.sign_in()
            assert status_json(c)["expiry_trend"] == "unknown"
            for _ in range(3):
                c.e.advance(DAY + 60)
                c("refresh", "--force", check=0)
            row = status_json(c)
            assert row["expiry_trend"] == expected, (policy, row)
            text = c("status").stdout
            if expected == "fixed":
                assert "refreshing does not extend it; sign in again before 20" in text
            else:
                assert "slides on use" in text


def test_verify_checks_the_admin_role(signed_in: Cli) -> None:
    c = signed_in
    proc = c("verify")
    assert proc.returncode == 0 and "role Full Admin: yes" in proc.stderr
    user = c.e.emu.user_by_email("admin@example.com")
    assert user is not None
    user.roles = []  # the admin lost the role at Webex
    proc = c("verify")
    assert proc.returncode == 1 and "is not a Full Admin" in proc.stderr
    # A probe sees Webex refuse the admin endpoint, and people/me tells why.
    assert c("status", "--probe").returncode == 3
    row = status_json(c)
    assert row["state"] == "warning" and row["probe"]["cause"] == "admin_role_lost"  # type: ignore[index]


def test_a_probe_notices_the_org_changed(signed_in: Cli) -> None:
    c = signed_in
    user = c.e.emu.user_by_email("admin@example.com")
    assert user is not None
    user.org_uuid = "00000000-0000-4000-8000-000000000002"
    assert c("status", "--probe").returncode == 3
    assert status_json(c)["probe"]["cause"] == "org_changed"  # type: ignore[index]


def test_the_event_log_lists_a_session_in_order_without_secrets(signed_in: Cli) -> None:
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    c.e.advance(120)
    c("refresh", check=0)
    c("status", "--probe", check=0)
    access = c("token", check=0).stdout.strip()
    c("logout", check=0)
    lines = c("log", "--json", check=0).stdout.splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds == [
        "schema_created",
        "store_created",
        "profile_added",
        "exchange",
        "export",
        "refresh",
        "probe",
        "logout",
    ], kinds
    first = json.loads(lines[0])
    assert first["at"][-6] in "+-"  # local time with its offset
    only = c("log", "-p", "rec", "--kind", "refresh", "--json", check=0).stdout.splitlines()
    assert [json.loads(x)["kind"] for x in only] == ["refresh"]
    recent = c("log", "--since", "1m", "--json", check=0).stdout.splitlines()
    assert [json.loads(x)["kind"] for x in recent] == ["refresh", "probe", "logout"]
    assert c("log", "--since", "soon").returncode == 2
    text = c("log", check=0).stdout
    assert "refresh" in text and "rec" in text
    assert_no_secret([*lines, text], [rt, access, c.e.client_secret])
