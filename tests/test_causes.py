"""Every named cause, produced at the emulator the way Webex produces it, and seen by an admin
three ways: `status`'s table, `status --json` and the exit code.

The emulator answers as Webex does, without hints: a refused refresh always gets Webex's one
"invalid, expired, revoked, or was issued to another client" answer, and a dead access token
Webex's one 401. So a password change, a deactivation or a block shows as `revoked` (Webex does
not say which) while the emulator's ledger records what really happened; a cause is named only
when Webex's answer or wxtoken's own records tell it. Variants Webex might send (an OAuth code
or words that name the cause) are read from raw answers at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_inproc import Cli, cli_fixture
from tests.conftest import assert_no_secret
from wxtoken import causes, oauth_errors
from wxtoken.errors import (
    EXIT_ATTENTION,
    EXIT_LOGIN_REQUIRED,
    EXIT_OK,
    AppDeauthorized,
    ConsentDenied,
)

pytest_plugins = ["tests.cli_fixtures"]

ADMIN = "admin@example.com"
DAY = 86400
OTHER_ORG = "00000000-0000-4000-8000-0000000000aa"


def seen(c: Cli, *args: str, code: int, cause: str | None) -> dict[str, Any]:
    """`status` with `args`: the exit code, the cause in the JSON row, and the cause's own text in
    the table (so the table and the JSON can never disagree). Returns the JSON row."""
    table = c("status", *args)
    assert table.returncode == code, (table.stdout, table.stderr)
    rows = json.loads(c("status", "--json").stdout)
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    named = row["cause"] or (row["probe"] or {}).get("cause")
    assert named == cause, row
    if cause is not None:
        text, _fix = causes.describe(cause, "rec") or ("", "")
        assert " ".join(text.split()) in " ".join(table.stdout.split()), table.stdout
    return row


def ledger_causes(c: Cli) -> list[str]:
    return [e["cause"] for e in c.e.ledger() if e.get("cause")]


def test_a_refresh_token_past_its_stated_expiry_is_expired(signed_in: Cli) -> None:
    c = signed_in
    c.e.advance(91 * DAY)
    row = seen(c, "--probe", code=EXIT_LOGIN_REQUIRED, cause="expired")  # known locally
    assert row["probe"]["verdict"] == "unknown"
    proc = c("token")
    assert proc.returncode == EXIT_LOGIN_REQUIRED
    assert "the refresh token has expired" in proc.stderr
    assert "fix: wxtoken login -p rec, then wxtoken export -p rec" in proc.stderr
    seen(c, code=EXIT_LOGIN_REQUIRED, cause="expired")
    assert ledger_causes(c) == ["expired"]


def test_webex_s_one_refusal_before_the_stated_expiry_is_revoked_not_expired(
    signed_in: Cli,
) -> None:
    """Webex's refusal text contains the word "expired" for every cause; it must not be read
    as one."""
    c = signed_in
    rt = c("export", check=0).stdout.strip()
    c.e.control("POST", "revoke", {"token": rt})
    proc = c("refresh", "--force")
    assert proc.returncode == EXIT_LOGIN_REQUIRED and "does not say which" in proc.stderr
    seen(c, code=EXIT_LOGIN_REQUIRED, cause="revoked")


@pytest.mark.parametrize(
    ("change", "ledger"),
    [
        ({"password_changed": True}, "password_changed"),
        ({"active": False}, "deactivated"),
    ],
)
def test_a_user_change_at_webex_reads_as_revoked_as_webex_answers_it(
    signed_in: Cli, change: dict[str, Any], ledger: str
) -> None:
    c = signed_in
    assert c.e.control("POST", "users", {"email": ADMIN, **change})["revoked"] == 1
    seen(c, "--probe", code=EXIT_LOGIN_REQUIRED, cause="revoked")
    proc = c("refresh", "--force")
    assert proc.returncode == EXIT_LOGIN_REQUIRED and "password" in proc.stderr
    assert ledger in ledger_causes(c)
    assert c("token").returncode == EXIT_LOGIN_REQUIRED, "never a dead token"


def test_a_lost_admin_role_degrades_the_grant_and_people_me_tells_why(signed_in: Cli) -> None:
    c = signed_in
    c.e.control("POST", "users", {"email": ADMIN, "roles": []})
    row = seen(c, "--probe", code=EXIT_ATTENTION, cause="admin_role_lost")
    assert row["state"] == "warning" and row["probe"]["verdict"] == "degraded"
    assert c("refresh", "--force").returncode == EXIT_OK, "the grant itself still works"
    c.e.control("POST", "users", {"email": ADMIN, "roles": ["Full_Admin"]})
    seen(c, "--probe", code=EXIT_OK, cause=None)


def test_a_lost_admin_role_that_ends_the_grant_is_revoked(signed_in: Cli) -> None:
    c = signed_in
    c.e.policy(revoke_on_admin_loss=True)
    c.e.control("POST", "users", {"email": ADMIN, "roles": []})
    seen(c, "--probe", code=EXIT_LOGIN_REQUIRED, cause="revoked")
    assert "admin_role_removed" in ledger_causes(c)


def test_a_403_that_cannot_be_explained_is_forbidden(signed_in: Cli) -> None:
    """Webex refuses the probe with a 403 (a licence, say) while people/me shows every role the
    scopes need and every scope was granted: nothing tells which, so it is `forbidden`."""
    c = signed_in
    c.e.fault("status", "token_expiry", status=403)
    row = seen(c, "--probe", code=EXIT_ATTENTION, cause="forbidden")
    assert "HTTP 403" in row["probe"]["detail"] or "403" in row["probe"]["detail"]
    assert "trackingId" in row["probe"]["detail"]


def test_scopes_granted_short_of_the_profile_are_scopes_missing(c: Cli) -> None:
    c.add_profile()
    granted = ("spark:kms", "spark:people_read", "identity:tokens_read")
    code = c.code(scopes=granted)
    c("exchange", "-p", "rec", "--code", "-", input=code + "\n", check=0)
    row = seen(c, "--probe", code=EXIT_ATTENTION, cause="scopes_missing")
    assert "identity:tokens_write" in row["probe"]["detail"]
    assert "spark-compliance:recordings_read" in row["probe"]["detail"]


def test_an_org_change_degrades_the_probe_and_stops_refreshes_with_the_grant_kept(
    signed_in: Cli,
) -> None:
    c = signed_in
    c.e.control("POST", "users", {"email": ADMIN, "org_id": OTHER_ORG})
    row = seen(c, "--probe", code=EXIT_ATTENTION, cause="org_changed")
    assert OTHER_ORG in row["probe"]["detail"]
    before = c("export", check=0).stdout
    proc = c("refresh", "--force")
    assert proc.returncode == 1 and OTHER_ORG in proc.stderr
    row = seen(c, code=EXIT_ATTENTION, cause="org_changed")
    assert row["reason"].startswith("refreshing fails: ")
    assert c("export", check=0).stdout == before, "the stored grant was left untouched"


def test_an_org_change_that_ends_the_grant_is_revoked(signed_in: Cli) -> None:
    c = signed_in
    c.e.policy(revoke_on_org_change=True)
    c.e.control("POST", "users", {"email": ADMIN, "org_id": OTHER_ORG})
    seen(c, "--probe", code=EXIT_LOGIN_REQUIRED, cause="revoked")
    assert "org_changed" in ledger_causes(c)


def test_a_blocked_integration_reads_as_revoked_and_a_sign_in_is_refused(signed_in: Cli) -> None:
    c = signed_in
    assert c.e.control("POST", "block", {"client_id": c.e.client_id})["revoked"] == 1
    proc = c("refresh", "--force")
    assert proc.returncode == EXIT_LOGIN_REQUIRED and "integration was blocked" in proc.stderr
    seen(c, code=EXIT_LOGIN_REQUIRED, cause="revoked")
    assert "blocked" in ledger_causes(c)


def test_a_block_that_keeps_existing_grants_leaves_refreshing_working(signed_in: Cli) -> None:
    c = signed_in
    c.e.policy(revoke_on_block=False)
    c.e.control("POST", "block", {"client_id": c.e.client_id})
    assert c("refresh", "--force").returncode == EXIT_OK
    seen(c, "--probe", code=EXIT_OK, cause=None)


def test_the_token_limit_keeps_the_grant_names_the_cause_and_clears_on_success(
    signed_in: Cli,
) -> None:
    c = signed_in
    c.e.policy(token_limit=1)
    proc = c("refresh", "--force")
    assert proc.returncode == 1
    assert "too many active tokens" in proc.stderr
    assert "then try again: wxtoken refresh -p rec" in proc.stderr
    row = seen(c, code=EXIT_ATTENTION, cause="token_limit")
    assert row["state"] == "warning" and row["failures"] == 1
    assert c("token").returncode == EXIT_OK, "the grant and its access token still work"
    # A sign-in meets the same limit: the code is spent, so the fix is a new sign-in.
    code = c.code()
    proc = c("exchange", "-p", "rec", "--code", "-", input=code + "\n")
    assert proc.returncode == 1 and "then wxtoken login -p rec" in proc.stderr
    c.e.policy(token_limit=None)  # the admin revoked unused grants
    c.e.advance(1)  # a later attempt, not one queued behind the failed refresh
    assert c("refresh", "--force").returncode == EXIT_OK
    seen(c, code=EXIT_OK, cause=None)
    assert ledger_causes(c) == ["token_limit", "token_limit"]
    assert_no_secret(c.outputs, [c.e.client_secret, code])


def _classified(body: dict[str, Any], status: int = 400, grant: str = "refresh_token") -> Any:
    info = oauth_errors.read_error(status, json.dumps(body).encode(), {})
    return oauth_errors.classify_error(info, grant=grant)


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ({"error": "invalid_grant", "error_description": "Refresh token expired"}, "expired"),
        (
            {"error": "invalid_grant", "error_description": "The user changed their password"},
            "user_changed",
        ),
        ({"message": "invalid_grant: inactive user", "errors": []}, "user_changed"),
        ({"error": "access_denied"}, "blocked"),
        ({"error": "unauthorized_client"}, "blocked"),
        ({"error": "tokenlimit_reached"}, "token_limit"),
        (
            {
                "errors": [
                    {
                        "description": "invalid_grant: The provided refresh token is invalid, "
                        "expired, revoked, or was issued to another client."
                    }
                ]
            },
            None,
        ),
    ],
)
def test_variants_webex_might_send_name_their_cause(body: dict[str, Any], cause: str) -> None:
    exc = _classified(body)
    assert causes.told_by(exc) == cause
    assert causes.from_error(exc) == (cause or "revoked")
    assert causes.from_error(exc, past_stated_expiry=True) == (cause or "expired")


def test_a_blocked_answer_at_refresh_names_the_fix_for_the_control_hub_admin() -> None:
    exc = _classified({"error": "access_denied"})
    assert isinstance(exc, ConsentDenied)
    assert "blocked in Control Hub" in exc.message and "Control Hub admin" in (exc.fix or "")


def test_every_cause_has_a_text_and_a_pasteable_fix() -> None:
    for name, cause in causes.CAUSES.items():
        text, fix = causes.describe(name, "p1") or ("", "")
        assert text and "{" not in fix and "-p p1" in fix, name
        assert cause.name == name


def test_a_probe_after_a_lapsed_access_token_says_the_next_refresh_will_tell(
    tmp_path: Path,
) -> None:
    for c in cli_fixture(tmp_path, access_ttl=60):
        c.add_profile()
        c.sign_in()
        c.e.advance(120)
        row = seen(c, "--probe", code=EXIT_OK, cause=None)
        assert row["probe"]["verdict"] == "unknown"
        assert "next refresh will tell" in row["probe"]["detail"]


@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_mint_names_the_app_s_authorization(status: int) -> None:
    """Minting answers 403 for an org that has not authorized the app and 404 for an app it does
    not know there; elsewhere a 403 only says "forbidden"."""
    body = {"message": "refused", "errors": [{"description": "refused"}]}
    exc = _classified(body, status=status, grant=oauth_errors.GRANT_MINT)
    assert isinstance(exc, AppDeauthorized) and exc.exit_code == EXIT_LOGIN_REQUIRED
    assert causes.told_by(exc) == "app_deauthorized"
    assert "Control Hub > Management > Apps > Service Apps > authorize" in (exc.fix or "")
    assert causes.told_by(_classified(body, status=403, grant="api")) == "forbidden"
    assert not isinstance(_classified(body, status=404, grant="api"), AppDeauthorized)
