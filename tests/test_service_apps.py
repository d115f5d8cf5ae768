"""Service-app profiles in process: adding one (what can be checked locally), minting it through
its minter, refreshing it, minting it again when Webex refuses its refresh token, naming a
deauthorization, the chain in `status`, cycles and minter removal refused.

The emulator is the other side: it mints only for an org the app is authorized in and only for
a bearer with spark:applications_token, and deauthorizing ends the app's grants in that org.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli_inproc import Cli, Result
from tests.conftest import assert_no_secret
from wxtoken import causes
from wxtoken.errors import EXIT_ATTENTION, EXIT_LOGIN_REQUIRED, EXIT_OK, EXIT_USAGE
from wxtoken.service_apps import org_rest_id

pytest_plugins = ["tests.cli_fixtures"]

DAY = 86400
MINTER_SCOPES = "spark:kms spark:people_read spark:applications_token"
APP_SCOPES = "spark-admin:recordings_read spark:kms"
FIX = "Control Hub > Management > Apps > Service Apps > authorize"


def add_minter(c: Cli, name: str = "minter") -> None:
    """An integration profile asking for spark:applications_token, signed in."""
    c.add_profile(name, scopes=MINTER_SCOPES)
    code = c.e.emu.authorization_code(c.e.client_id, c.e.redirect_uri, MINTER_SCOPES.split())
    c("exchange", "-p", name, "--code", "-", input=code + "\n", check=0)


def add_svc(
    c: Cli,
    name: str = "svc",
    minter: str = "minter",
    app: dict[str, Any] | None = None,
    *extra: str,
    scopes: str = APP_SCOPES,
    org: str | None = None,
) -> Result:
    app = app or c.e.info["service_app"]
    return c(
        "profile", "add", name, "--service-app", "--app-id", app["application_id"],
        "--client-id", app["client_id"], "--target-org", org or c.e.info["org_id"],
        "--minter", minter, "--scopes", scopes, "--client-secret-stdin", *extra,
        input=app["client_secret"] + "\n",
    )  # fmt: skip


def new_app(c: Cli, scopes: str) -> dict[str, Any]:
    """A second service app, created and authorized in the seeded org through the control API."""
    body = {"scopes": scopes.split(), "authorized_org_ids": [c.e.info["org_id"]]}
    return dict(c.e.control("POST", "service-apps", body))


def deauthorize(c: Cli, app: dict[str, Any], authorized: bool = False) -> int:
    body = {
        "application_id": app["application_id"],
        "org_id": c.e.info["org_id"],
        "authorized": authorized,
    }
    return int(c.e.control("POST", "service-apps/authorization", body)["revoked"])


def mints(c: Cli, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in c.e.ledger(since) if e["endpoint"] == "applications_token"]


def status_row(c: Cli, name: str) -> dict[str, Any]:
    rows = json.loads(c("status", "-p", name, "--json").stdout)
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


@pytest.fixture
def minted(c: Cli) -> Cli:
    add_minter(c)
    assert add_svc(c).returncode == EXIT_OK
    c("login", "-p", "svc", check=0)
    return c


def test_a_service_app_is_minted_refreshed_and_minted_again(c: Cli) -> None:
    add_minter(c)
    added = add_svc(c)
    assert added.returncode == EXIT_OK, added.stderr
    shown = json.loads(c("profile", "show", "svc", "--json", check=0).stdout)
    app = c.e.info["service_app"]
    assert shown["kind"] == "service-app" and shown["redirect_uri"] == ""
    assert shown["minter"] == "minter" and shown["app_id"] == app["application_id"]
    # A bare org UUID is stored (and sent) as the org's REST id.
    assert shown["target_org"] == org_rest_id(c.e.info["org_id"]) != c.e.info["org_id"]
    assert shown["base_url"] == c.e.base_url  # the minter's
    mark = c.e.mark()
    login = c("login", "-p", "svc", check=0)
    assert "Minted tokens for service app 'svc' through 'minter'" in login.stderr
    [mint] = mints(c, mark)
    assert mint["status"] == 200 and mint["client_id"] == app["client_id"]
    row = status_row(c, "svc")
    assert row["state"] == "ok" and row["org_id"] == c.e.info["org_id"]
    assert row["chain"]["profiles"] == ["svc", "minter"]
    table = c("status", "-p", "svc", check=0).stdout
    assert "svc: service app, minted through svc <- minter" in table

    # Its own refresh token refreshes at /v1/access_token with its own client id.
    mark = c.e.mark()
    c("refresh", "-p", "svc", "--force", check=0)
    [refresh] = c.e.refreshes(mark)
    assert refresh["status"] == 200 and refresh["client_id"] == app["client_id"]
    assert not mints(c, mark)

    # Webex refuses its refresh token: minted again through the minter, not login_required.
    rt = c("export", "-p", "svc", check=0).stdout.strip()
    assert c.e.control("POST", "revoke", {"token": rt})["revoked"] == 1
    mark = c.e.mark()
    again = c("refresh", "-p", "svc", "--force")
    assert again.returncode == EXIT_OK, again.stderr
    assert [e["status"] for e in c.e.refreshes(mark)] == [400]
    assert [e["status"] for e in mints(c, mark)] == [200]
    assert c("export", "-p", "svc", check=0).stdout.strip() != rt
    assert status_row(c, "svc")["state"] == "ok"
    lines = c("log", "-p", "svc", "--json", check=0).stdout.splitlines()
    assert "reminted" in [json.loads(line)["kind"] for line in lines]
    said = [login.stdout, login.stderr, again.stdout, again.stderr, table]
    assert_no_secret(said, [app["client_secret"], rt])


def test_a_deauthorized_app_is_named_with_its_fix(minted: Cli) -> None:
    c = minted
    app = c.e.info["service_app"]
    assert deauthorize(c, app) == 1  # the app's grant in that org ended
    mark = c.e.mark()
    proc = c("refresh", "-p", "svc", "--force")
    assert proc.returncode == EXIT_LOGIN_REQUIRED, proc.stderr
    text, _fix = causes.describe("app_deauthorized", "svc") or ("", "")
    assert text in proc.stderr and FIX in proc.stderr and "wxtoken login -p svc" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line
    assert [e["status"] for e in mints(c, mark)] == [403]
    assert mints(c, mark)[0]["error"] == "not_authorized"
    row = status_row(c, "svc")
    assert row["state"] == "login_required" and row["cause"] == "app_deauthorized"
    table = c("status", "-p", "svc")
    assert table.returncode == EXIT_LOGIN_REQUIRED
    assert FIX in table.stdout and text in " ".join(table.stdout.split())
    # Authorized again, a login mints again and the profile is ok.
    deauthorize(c, app, authorized=True)
    c("login", "-p", "svc", check=0)
    assert status_row(c, "svc")["state"] == "ok"


def test_an_unknown_app_at_login_is_named_as_not_authorized(c: Cli) -> None:
    add_minter(c)
    app = dict(c.e.info["service_app"], application_id=org_rest_id(c.e.info["org_id"]))
    assert add_svc(c, "svc", "minter", app).returncode == EXIT_OK
    proc = c("login", "-p", "svc")
    assert proc.returncode == EXIT_LOGIN_REQUIRED
    assert "HTTP 404" in proc.stderr and FIX in proc.stderr


def test_a_service_app_minted_through_another_service_app(c: Cli) -> None:
    add_minter(c)
    middle = new_app(c, "spark:applications_token spark:kms")
    assert add_svc(c, "middle", "minter", middle, scopes="spark:applications_token").returncode == 0
    assert add_svc(c, "leaf", "middle").returncode == 0
    mark = c.e.mark()
    c("login", "-p", "middle", check=0)
    c("login", "-p", "leaf", check=0)
    got = mints(c, mark)
    assert [(e["status"], e["client_id"]) for e in got] == [
        (200, middle["client_id"]),
        (200, c.e.info["service_app"]["client_id"]),
    ]
    assert status_row(c, "leaf")["chain"]["profiles"] == ["leaf", "middle", "minter"]
    # The leaf's refresh token refused: minted again through the middle app's token.
    rt = c("export", "-p", "leaf", check=0).stdout.strip()
    c.e.control("POST", "revoke", {"token": rt})
    mark = c.e.mark()
    c("refresh", "-p", "leaf", "--force", check=0)
    assert [e["client_id"] for e in mints(c, mark)] == [c.e.info["service_app"]["client_id"]]


def test_a_minter_that_does_not_ask_for_the_minting_scope_is_refused(c: Cli) -> None:
    """The seeded app does not ask for spark:applications_token, so it cannot be a minter."""
    add_minter(c)
    assert add_svc(c, "plain").returncode == 0
    c("login", "-p", "plain", check=0)
    refused = add_svc(c, "leaf", "plain")
    assert refused.returncode == EXIT_USAGE
    assert "does not ask for spark:applications_token" in refused.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--minter", "nobody"), "the minter 'nobody' of 'svc' is not a profile"),
        (("--minter", "svc"), "cannot mint its own tokens"),
        (("--target-org", "acme"), "neither a Webex org id nor an org UUID"),
        (("--redirect-uri", "http://127.0.0.1:8765/callback"), "has no redirect URI"),
    ],
)
def test_add_refuses_what_can_be_checked_locally(c: Cli, args: tuple[str, ...], says: str) -> None:
    add_minter(c)
    app = c.e.info["service_app"]
    opts = {"--minter": "minter", "--target-org": c.e.info["org_id"]}
    extra: list[str] = []
    for key, value in zip(args[::2], args[1::2], strict=True):
        if key in opts:
            opts[key] = value
        else:
            extra += [key, value]
    proc = c(
        "profile", "add", "svc", "--service-app", "--app-id", app["application_id"],
        "--client-id", app["client_id"], "--scopes", APP_SCOPES, "--client-secret-stdin",
        *[x for kv in opts.items() for x in kv], *extra, input=app["client_secret"] + "\n",
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert says in proc.stderr and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert json.loads(c("profile", "list", "--json").stdout)[-1]["name"] == "minter"
    assert_no_secret(c.outputs, [app["client_secret"]])


def test_service_app_options_need_the_flag_and_the_flag_needs_them(c: Cli) -> None:
    add_minter(c)
    proc = c(
        "profile", "add", "x", "--client-id", c.e.client_id, "--minter", "minter",
        "--scopes", "spark:kms", "--client-secret-stdin", input="s\n",
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE and "--service-app" in proc.stderr
    proc = c(
        "profile", "add", "x", "--service-app", "--client-id", c.e.client_id,
        "--scopes", "spark:kms", "--client-secret-stdin", input="s\n",
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE
    assert "needs --app-id, --target-org, --minter" in proc.stderr
    proc = c("profile", "add", "x", "--client-id", c.e.client_id, "--scopes", "spark:kms")
    assert proc.returncode == EXIT_USAGE and "needs --redirect-uri" in proc.stderr


def test_a_cycle_is_refused_at_set(c: Cli) -> None:
    add_minter(c)
    middle = new_app(c, "spark:applications_token")
    add_svc(c, "a", "minter", middle, scopes="spark:applications_token")
    add_svc(c, "b", "a", middle, scopes="spark:applications_token")
    proc = c("profile", "set", "a", "--minter", "b")
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.count("\n") == 1
    assert "would make a cycle (a <- b <- a)" in proc.stderr
    assert "wxtoken profile set a --minter PROFILE" in proc.stderr
    assert json.loads(c("profile", "show", "a", "--json").stdout)["minter"] == "minter"
    # A minter change that closes no cycle is taken; an integration has no minter.
    c("profile", "set", "b", "--minter", "minter", check=0)
    assert json.loads(c("profile", "show", "b", "--json").stdout)["minter"] == "minter"
    proc = c("profile", "set", "minter", "--minter", "a")
    assert proc.returncode == EXIT_USAGE and "not a service app" in proc.stderr


def test_a_minter_is_not_removed_while_service_apps_depend_on_it(minted: Cli) -> None:
    c = minted
    middle = new_app(c, "spark:applications_token")
    add_svc(c, "svc2", "minter", middle, scopes="spark:applications_token")
    proc = c("profile", "remove", "minter", "--yes")
    assert proc.returncode == EXIT_USAGE and proc.stderr.count("\n") == 1
    assert "profile 'minter' mints the tokens of 'svc', 'svc2'" in proc.stderr
    assert "wxtoken profile set svc --minter PROFILE" in proc.stderr
    assert "minter" in [p["name"] for p in json.loads(c("profile", "list", "--json").stdout)]
    # Once nothing depends on it, it goes.
    c("profile", "remove", "svc", "--yes", check=0)
    c("profile", "remove", "svc2", "--yes", check=0)
    c("profile", "remove", "minter", "--yes", check=0)


def test_status_warns_with_the_minter_when_its_refresh_token_ends_first(c: Cli) -> None:
    c.e.policy(refresh_expiry="fixed")  # a refresh does not extend the minter's horizon
    add_minter(c)
    c.e.advance(80 * DAY)  # the minter's refresh token has 10 days left
    add_svc(c)
    c("login", "-p", "svc", check=0)
    row = status_row(c, "svc")
    assert row["state"] == "warning"
    assert row["chain"]["horizon_profile"] == "minter"
    assert "its minter 'minter''s refresh token expires within 14 days" in row["reason"]
    assert row["reason"].endswith("fix: wxtoken login -p minter")
    assert c("status", "-p", "svc").returncode == EXIT_ATTENTION
    # With a shorter window nothing is near its end.
    assert c("status", "-p", "svc", "--warn-days", "5").returncode == EXIT_OK


def test_status_warns_when_the_minter_needs_a_sign_in(minted: Cli) -> None:
    c = minted
    rt = c("export", "-p", "minter", check=0).stdout.strip()
    c.e.control("POST", "revoke", {"token": rt})
    assert c("refresh", "-p", "minter", "--force").returncode == EXIT_LOGIN_REQUIRED
    row = status_row(c, "svc")
    assert row["state"] == "warning" and row["chain"]["minter_needs_login"] == "minter"
    assert "fix: wxtoken login -p minter" in row["reason"]
    # Its own refresh still works; once that is refused it cannot be minted again, and says why.
    c("refresh", "-p", "svc", "--force", check=0)
    svc_rt = c("export", "-p", "svc", check=0).stdout.strip()
    c.e.control("POST", "revoke", {"token": svc_rt})
    proc = c("refresh", "-p", "svc", "--force")
    assert proc.returncode == EXIT_LOGIN_REQUIRED
    assert "the minter 'minter' of 'svc' cannot give a token" in proc.stderr
    assert "fix: wxtoken login -p minter, then wxtoken login -p svc" in proc.stderr
    assert status_row(c, "svc")["state"] == "login_required"


def test_a_minter_grant_without_the_minting_scope_is_refused_before_sending(c: Cli) -> None:
    """The minter asks for spark:applications_token but Webex did not grant it: minting is not
    attempted (a 403 from minting is then only ever the app's authorization)."""
    c.add_profile("minter", scopes=MINTER_SCOPES)
    code = c.e.emu.authorization_code(c.e.client_id, c.e.redirect_uri, ["spark:kms"])
    c("exchange", "-p", "minter", "--code", "-", input=code + "\n", check=0)
    assert add_svc(c).returncode == EXIT_OK
    mark = c.e.mark()
    proc = c("login", "-p", "svc")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "the minter 'minter''s grant lacks spark:applications_token" in proc.stderr
    assert "wxtoken login -p minter" in proc.stderr
    assert not mints(c, mark)


def test_a_code_is_not_exchanged_for_a_service_app(minted: Cli) -> None:
    c = minted
    code = c.code()
    mark = c.e.mark()
    proc = c("exchange", "-p", "svc", "--code", "-", input=code + "\n")
    assert proc.returncode == EXIT_USAGE and "its tokens are minted" in proc.stderr
    assert "fix: wxtoken login -p svc" in proc.stderr and c.e.ledger(mark) == []
