"""Service apps through the installed `wxtoken`, against an emulator subprocess: minted through
an integration a person signed in to (in the browser), refreshed, minted again once Webex
refuses its refresh token, a deauthorization in Control Hub named with its fix, a service app
minted through another service app, and the chain rules refused with one line and exit 2.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Emulator, Wx, assert_no_secret

MINTER_SCOPES = "spark:kms spark:people_read spark:applications_token"
APP_SCOPES = "spark-admin:recordings_read spark:kms"
CONTROL_HUB_FIX = "Control Hub > Management > Apps > Service Apps > authorize"


def add_minter(wx: Wx, emu: Emulator, name: str = "minter") -> None:
    wx.add_profile(emu, name, scopes=MINTER_SCOPES)
    proc = wx.login(name)
    assert proc.returncode == 0, proc.stderr


def add_svc(
    wx: Wx,
    emu: Emulator,
    name: str = "svc",
    minter: str = "minter",
    app: dict[str, Any] | None = None,
    scopes: str = APP_SCOPES,
    check: int | None = 0,
) -> Any:
    app = app or emu.info["service_app"]
    return wx(
        "profile", "add", name, "--service-app", "--app-id", app["application_id"],
        "--client-id", app["client_id"], "--target-org", emu.info["org_id"],
        "--minter", minter, "--scopes", scopes, "--client-secret-stdin",
        input=app["client_secret"] + "\n", check=check,
    )  # fmt: skip


def mints(emu: Emulator, since: int) -> list[dict[str, Any]]:
    return [e for e in emu.ledger(since) if e["endpoint"] == "applications_token"]


def row(wx: Wx, name: str) -> dict[str, Any]:
    rows = json.loads(wx("status", "-p", name, "--json").stdout)
    assert len(rows) == 1
    found: dict[str, Any] = rows[0]
    return found


def authorize(emu: Emulator, app: dict[str, Any], authorized: bool) -> int:
    body = {
        "application_id": app["application_id"],
        "org_id": emu.info["org_id"],
        "authorized": authorized,
    }
    return int(emu.control("POST", "service-apps/authorization", body)["revoked"])


def test_minted_refreshed_minted_again_and_deauthorized(wx: Wx, emu: Emulator) -> None:
    app = emu.info["service_app"]
    add_minter(wx, emu)
    add_svc(wx, emu)
    mark = emu.mark()
    login = wx("login", "-p", "svc", check=0)
    assert "Minted tokens for service app 'svc' through 'minter'" in login.stderr
    assert [(e["status"], e["client_id"]) for e in mints(emu, mark)] == [(200, app["client_id"])]
    status = wx("status", "-p", "svc", check=0).stdout
    assert "svc: service app, minted through svc <- minter" in status
    token = wx("token", "-p", "svc", check=0).stdout.strip()
    assert token.endswith(emu.info["org_id"])  # the target org's machine account

    # Refreshed with its own client id, at /v1/access_token, like any grant.
    mark = emu.mark()
    wx("refresh", "-p", "svc", "--force", check=0)
    assert [(e["status"], e["client_id"]) for e in emu.refreshes(mark)] == [(200, app["client_id"])]

    # Webex refuses its refresh token (revoked at the emulator): minted again, exit 0.
    rt = wx("export", "-p", "svc", check=0).stdout.strip()
    emu.control("POST", "revoke", {"token": rt})
    mark = emu.mark()
    again = wx("refresh", "-p", "svc", "--force")
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in emu.refreshes(mark)] == [400]
    assert [e["status"] for e in mints(emu, mark)] == [200]
    # The recorder's copy (exported above) is of the ended grant: status says so.
    found = row(wx, "svc")
    assert found["state"] == "warning" and found["recorder_copy"]["state"] == "stale", found
    assert "the service app was minted again" in found["reason"]
    new_rt = wx("export", "-p", "svc", check=0).stdout.strip()
    assert new_rt != rt and row(wx, "svc")["state"] == "ok"

    # An admin deauthorizes the app in the org: its grant ends, minting is refused (403), and
    # the cause is named, with Control Hub's fix, by the refresh and by status.
    assert authorize(emu, app, False) == 1
    mark = emu.mark()
    dead = wx("refresh", "-p", "svc", "--force")
    assert dead.returncode == 4, dead.stderr
    assert dead.stderr.count("\n") == 1 and "Traceback" not in dead.stderr
    assert "the service app is not authorized in the target org" in dead.stderr
    assert CONTROL_HUB_FIX in dead.stderr and "wxtoken login -p svc" in dead.stderr
    assert [(e["status"], e["error"]) for e in mints(emu, mark)] == [(403, "not_authorized")]
    shown = wx("status", "-p", "svc")
    assert shown.returncode == 4
    assert CONTROL_HUB_FIX in shown.stdout
    found = row(wx, "svc")
    assert found["state"] == "login_required" and found["cause"] == "app_deauthorized"
    # The minter is untouched by its service app's fate.
    assert row(wx, "minter")["state"] == "ok"
    # Authorized again: `login` mints again (a new grant: the recorder needs it handed over).
    authorize(emu, app, True)
    wx("login", "-p", "svc", check=0)
    found = row(wx, "svc")
    assert found["cause"] is None and found["recorder_copy"]["state"] == "stale", found
    said = [login.stderr, again.stdout, again.stderr, dead.stderr, shown.stdout, status]
    assert_no_secret(said, [app["client_secret"], rt, new_rt, emu.client_secret])


def test_a_service_app_minted_through_another_service_app(wx: Wx, emu: Emulator) -> None:
    add_minter(wx, emu)
    body = {"scopes": ["spark:applications_token"], "authorized_org_ids": [emu.info["org_id"]]}
    middle = emu.control("POST", "service-apps", body)
    add_svc(wx, emu, "middle", "minter", middle, scopes="spark:applications_token")
    add_svc(wx, emu, "leaf", "middle")
    mark = emu.mark()
    wx("login", "-p", "middle", check=0)
    wx("login", "-p", "leaf", check=0)
    got = [(e["status"], e["client_id"]) for e in mints(emu, mark)]
    assert got == [(200, middle["client_id"]), (200, emu.info["service_app"]["client_id"])]
    assert row(wx, "leaf")["chain"]["profiles"] == ["leaf", "middle", "minter"]
    assert "leaf: service app, minted through leaf <- middle <- minter" in (
        wx("status", "-p", "leaf", check=0).stdout
    )


def test_a_chain_is_minted_from_the_top(wx: Wx, emu: Emulator) -> None:
    """`login -p leaf` with a middle app that was never minted says which profile to log in
    first: a login mints one profile, never others on the way."""
    add_minter(wx, emu)
    body = {"scopes": ["spark:applications_token"], "authorized_org_ids": [emu.info["org_id"]]}
    middle = emu.control("POST", "service-apps", body)
    add_svc(wx, emu, "middle", "minter", middle, scopes="spark:applications_token")
    add_svc(wx, emu, "leaf", "middle")
    proc = wx("login", "-p", "leaf")
    assert proc.returncode == 4 and proc.stderr.count("\n") == 1
    assert "fix: wxtoken login -p middle, then wxtoken login -p leaf" in proc.stderr


def test_cycle_and_minter_removal_are_refused(wx: Wx, emu: Emulator) -> None:
    add_minter(wx, emu)
    body = {"scopes": ["spark:applications_token"], "authorized_org_ids": [emu.info["org_id"]]}
    middle = emu.control("POST", "service-apps", body)
    add_svc(wx, emu, "a", "minter", middle, scopes="spark:applications_token")
    add_svc(wx, emu, "b", "a", middle, scopes="spark:applications_token")
    cycle = wx("profile", "set", "a", "--minter", "b")
    assert cycle.returncode == 2 and cycle.stderr.count("\n") == 1
    assert "minting 'a' through 'b' would make a cycle (a <- b <- a)" in cycle.stderr
    removal = wx("profile", "remove", "minter", "--yes")
    assert removal.returncode == 2 and removal.stderr.count("\n") == 1
    assert "profile 'minter' mints the tokens of 'a'" in removal.stderr
    removal = wx("profile", "remove", "a", "--yes")
    assert removal.returncode == 2 and "mints the tokens of 'b'" in removal.stderr
    names = [p["name"] for p in json.loads(wx("profile", "list", "--json", check=0).stdout)]
    assert names == ["a", "b", "minter"] or sorted(names) == ["a", "b", "minter"]
    assert "Traceback" not in cycle.stderr + removal.stderr
