"""Every way a grant dies or degrades, produced through the control API, in process: what a
client sees (status and body, as Webex answers them, alike where Webex tells causes apart no
better) and what the ledger names as the cause."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests.emulator_inproc import InProc
from tests.emulator_requests import authorize, bearer, get_code, login, refresh, token_req
from wxtoken.emulator import AuthorizeRefused, Emulator, ManualClock
from wxtoken.emulator.model import MSG_400, MSG_401, MSG_403, REFRESH_REFUSED

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures

ADMIN = "admin@example.com"
USER = "user@example.com"
FULL_ADMIN_ID = "Y2lzY29zcGFyazovL3VzL1JPTEUvaWRfZnVsbF9hZG1pbg"
NEW_ORG = "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5"
REFUSED_REFRESH = (
    400,
    {"message": MSG_400, "errors": [{"description": f"invalid_grant: {REFRESH_REFUSED}"}]},
)
DEAD_TOKEN = (401, {"message": MSG_401, "errors": [{"description": MSG_401}]})


def change(http: httpx2.Client, **body: Any) -> httpx2.Response:
    return http.post("/_emulator/users", json=body)


def me(http: httpx2.Client, token: str) -> httpx2.Response:
    return http.get("/v1/people/me", headers=bearer(token))


def answer(r: httpx2.Response) -> tuple[int, dict[str, Any]]:
    """All a client can tell apart: the status and the body, less its tracking id."""
    body = dict(r.json())
    assert body.pop("trackingId") == r.headers["trackingid"]
    return r.status_code, body


def rest_ids(ids: list[str]) -> list[str]:
    """Webex REST ids (base64 of ciscospark://us/KIND/ID), decoded to KIND/ID."""
    return ["/".join(base64.b64decode(i + "==").decode().split("/")[-2:]) for i in ids]


def cause(e: InProc, endpoint: str) -> tuple[int, str | None, str | None]:
    """The ledger's last entry for `endpoint`: status, error code and cause."""
    entry = [x for x in e.ledger() if x["endpoint"] == endpoint][-1]
    return entry["status"], entry.get("error"), entry.get("cause")


# --- every dead refresh token and access token answers alike ----------------------------------

Scenario = Callable[[InProc, httpx2.Client, dict[str, Any]], str]


def _rotated(e: InProc, http: httpx2.Client, t: dict[str, Any]) -> str:
    e.policy(rotate="always")
    assert refresh(e, http, t["refresh_token"]).status_code == 200
    return str(t["refresh_token"])


def _reused(e: InProc, http: httpx2.Client, t: dict[str, Any]) -> str:
    e.policy(rotate="reuse-kills-family")
    new = refresh(e, http, t["refresh_token"]).json()["refresh_token"]
    assert refresh(e, http, t["refresh_token"]).status_code == 400  # the replay kills the family
    return str(new)


def _code_replayed(e: InProc, http: httpx2.Client, t: dict[str, Any]) -> str:
    e.policy(revoke_on_code_reuse=True)
    form = {"grant_type": "authorization_code", "code": get_code(e, http)}
    tokens = token_req(e, http, redirect_uri=e.redirect_uri, **form).json()
    token_req(e, http, redirect_uri=e.redirect_uri, **form)
    return str(tokens["refresh_token"])


def _revoked(e: InProc, http: httpx2.Client, t: dict[str, Any]) -> str:
    assert e.control("POST", "revoke", {"token": t["refresh_token"]}) == {"revoked": 1}
    return str(t["refresh_token"])


def _admin_removed(e: InProc, http: httpx2.Client) -> None:
    e.policy(revoke_on_admin_loss=True)
    change(http, email=ADMIN, roles=[])


def _org_moved(e: InProc, http: httpx2.Client) -> None:
    e.policy(revoke_on_org_change=True)
    change(http, email=ADMIN, org_id=NEW_ORG)


def _then(action: Callable[[InProc, httpx2.Client], Any]) -> Scenario:
    def scenario(e: InProc, http: httpx2.Client, t: dict[str, Any]) -> str:
        action(e, http)
        return str(t["refresh_token"])

    return scenario


DEAD_REFRESH: dict[str, Scenario] = {
    "unknown": lambda e, http, t: e.emu.new_token(e.info["org_id"]),
    "expired": _then(lambda e, http: e.control("POST", "clock", {"advance": 7776000})),
    "revoked": _revoked,
    "password_changed": _then(lambda e, http: change(http, email=ADMIN, password_changed=True)),
    "deactivated": _then(lambda e, http: change(http, email=ADMIN, active=False)),
    "blocked": _then(lambda e, http: e.control("POST", "block", {"client_id": e.client_id})),
    "admin_role_removed": _then(_admin_removed),
    "org_changed": _then(_org_moved),
    "rotated": _rotated,
    "reuse_detected": _reused,
    "code_reused": _code_replayed,
}


@pytest.mark.parametrize("why", sorted(DEAD_REFRESH))
def test_every_refused_refresh_token_gets_one_answer(
    e: InProc, http: httpx2.Client, why: str
) -> None:
    t = login(e, http)
    dead = DEAD_REFRESH[why](e, http, t)
    r = refresh(e, http, dead)
    assert answer(r) == REFUSED_REFRESH
    assert r.json()["errors"][0]["description"].startswith("invalid_grant: ")
    assert cause(e, "access_token") == (400, "invalid_grant", why)


def test_a_refresh_token_of_another_client_gets_the_same_answer(
    e: InProc, http: httpx2.Client
) -> None:
    t = login(e, http)
    app = e.info["service_app"]
    form = {"grant_type": "refresh_token", "refresh_token": t["refresh_token"]}
    r = token_req(e, http, client_id=app["client_id"], client_secret=app["client_secret"], **form)
    assert answer(r) == REFUSED_REFRESH
    assert cause(e, "access_token") == (400, "invalid_grant", "other_client")


DEAD_ACCESS = {
    k: DEAD_REFRESH[k]
    for k in ("expired", "revoked", "password_changed", "deactivated", "blocked", "org_changed")
}


@pytest.mark.parametrize("why", sorted(DEAD_ACCESS))
def test_every_dead_access_token_gets_one_answer(e: InProc, http: httpx2.Client, why: str) -> None:
    t = login(e, http)
    DEAD_ACCESS[why](e, http, t)
    for endpoint, path in (
        ("people_me", "/v1/people/me"),
        ("token_expiry", "/v1/authorizations/tokenExpiry"),
    ):
        r = http.get(path, headers=bearer(t["access_token"]))
        assert answer(r) == DEAD_TOKEN
        assert cause(e, endpoint) == (401, "invalid_token", why)


def test_no_token_unknown_token_and_a_superseded_one(e: InProc, http: httpx2.Client) -> None:
    assert answer(http.get("/v1/people/me")) == DEAD_TOKEN
    assert cause(e, "people_me") == (401, "invalid_token", "no_token")
    assert answer(me(http, e.emu.new_token(e.info["org_id"]))) == DEAD_TOKEN
    assert cause(e, "people_me") == (401, "invalid_token", "unknown")
    e.policy(revoke_previous_access_on_refresh=True)
    t = login(e, http)
    refresh(e, http, t["refresh_token"])
    assert answer(me(http, t["access_token"])) == DEAD_TOKEN
    assert cause(e, "people_me") == (401, "invalid_token", "superseded")


# --- users: roles, org, password, deactivation ---------------------------------------------


def test_losing_full_admin_keeps_the_grant_and_forbids_admin_endpoints(
    e: InProc, http: httpx2.Client
) -> None:
    t = login(e, http)
    # As Webex reports a Full Admin (an identity role id, base64 of ciscospark://us/ROLE/...).
    assert me(http, t["access_token"]).json()["roles"] == [FULL_ADMIN_ID]
    listing = {"personEmail": ADMIN}
    url = "/v1/authorizations"
    assert http.get(url, params=listing, headers=bearer(t["access_token"])).status_code == 200
    r = change(http, email=ADMIN, roles=["Compliance_Officer"])
    assert r.status_code == 200
    assert r.json()["user"]["roles"] == ["Compliance_Officer"] and r.json()["revoked"] == 0
    assert rest_ids(me(http, t["access_token"]).json()["roles"]) == ["ROLE/Compliance_Officer"]
    forbidden = http.get(url, params=listing, headers=bearer(t["access_token"]))
    assert answer(forbidden) == (403, {"message": MSG_403, "errors": [{"description": MSG_403}]})
    assert cause(e, "authorizations") == (403, "forbidden", "not_admin")
    deleting = http.delete(url, params={"clientId": e.client_id}, headers=bearer(t["access_token"]))
    assert answer(deleting) == answer(forbidden)
    # The grant itself lives on: refreshing works, and so does every non-admin endpoint.
    fresh = refresh(e, http, t["refresh_token"])
    assert fresh.status_code == 200
    assert me(http, fresh.json()["access_token"]).status_code == 200
    for admin_role in ("User_Admin", "id_device_admin", "Full_Admin"):  # each may list grants
        change(http, email=ADMIN, roles=[admin_role])
        assert http.get(url, params=listing, headers=bearer(t["access_token"])).status_code == 200


def test_losing_full_admin_can_end_the_grants(e: InProc, http: httpx2.Client) -> None:
    e.policy(revoke_on_admin_loss=True)
    t = login(e, http)
    assert change(http, email=ADMIN, roles=["Full_Admin", "User_Admin"]).json()["revoked"] == 0
    assert change(http, email=ADMIN, roles=["User_Admin"]).json()["revoked"] == 1
    assert answer(refresh(e, http, t["refresh_token"])) == REFUSED_REFRESH
    assert cause(e, "access_token") == (400, "invalid_grant", "admin_role_removed")
    # Gaining a role never ends anything, and a new sign-in works.
    assert change(http, email=USER, roles=["Full_Admin"]).json()["revoked"] == 0
    assert refresh(e, http, login(e, http)["refresh_token"]).status_code == 200


def test_moving_org_keeps_grants_and_new_tokens_carry_the_new_org(
    e: InProc, http: httpx2.Client
) -> None:
    old_org = e.info["org_id"]
    t = login(e, http)
    r = change(http, email=ADMIN, org_id=NEW_ORG.upper())
    assert r.json()["user"]["org_id"] == NEW_ORG and r.json()["revoked"] == 0
    # Existing tokens still work, and people/me names the new org.
    assert rest_ids([me(http, t["access_token"]).json()["orgId"]]) == [f"ORGANIZATION/{NEW_ORG}"]
    fresh = refresh(e, http, t["refresh_token"]).json()
    assert fresh["access_token"].endswith("_" + NEW_ORG)
    assert fresh["refresh_token"] == t["refresh_token"] and t["refresh_token"].endswith(old_org)
    again = login(e, http)
    assert again["access_token"].endswith(NEW_ORG) and again["refresh_token"].endswith(NEW_ORG)


def test_a_password_change_ends_every_grant_but_not_sign_in(e: InProc, http: httpx2.Client) -> None:
    first, second = login(e, http), login(e, http, scope="spark:kms")
    code = e.emu.authorization_code(e.client_id, e.redirect_uri, ["spark:kms"], user=USER)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    someone_else = token_req(e, http, **form).json()
    r = change(http, email=ADMIN, password_changed=True)
    assert r.json() == {
        "ok": True,
        "user": {
            "email": ADMIN,
            "person_id": e.info["user"]["person_id"],
            "org_id": e.info["org_id"],
            "roles": ["Full_Admin"],
            "active": True,
        },
        "revoked": 2,
    }
    assert refresh(e, http, someone_else["refresh_token"]).status_code == 200
    for t in (first, second):
        assert answer(refresh(e, http, t["refresh_token"])) == REFUSED_REFRESH
        assert answer(me(http, t["access_token"])) == DEAD_TOKEN
    assert refresh(e, http, login(e, http)["refresh_token"]).status_code == 200


def test_deactivation_ends_grants_and_refuses_sign_in(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    assert change(http, email=ADMIN, active=False).json()["revoked"] == 1
    assert answer(refresh(e, http, t["refresh_token"])) == REFUSED_REFRESH
    q = parse_qs(urlsplit(authorize(e, http).headers["location"]).query)
    assert q["error"] == ["access_denied"] and q["state"] == ["S1"] and "code" not in q
    assert cause(e, "authorize") == (302, "access_denied", "deactivated")
    with pytest.raises(AuthorizeRefused):
        e.emu.authorization_code(e.client_id, e.redirect_uri, ["spark:kms"])
    # Reactivated: sign-in works again; the ended grant stays ended.
    assert change(http, email=ADMIN, active=True).json()["user"]["active"] is True
    assert refresh(e, http, login(e, http)["refresh_token"]).status_code == 200
    assert refresh(e, http, t["refresh_token"]).status_code == 400


def test_the_revoke_route_keeps_working_and_names_its_cause(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    assert e.control("POST", "revoke", {"user": ADMIN}) == {"revoked": 1}
    refresh(e, http, t["refresh_token"])
    assert cause(e, "access_token") == (400, "invalid_grant", "password_changed")
    t = login(e, http)
    assert e.control("POST", "revoke", {"user": ADMIN, "deactivate": True}) == {"revoked": 1}
    refresh(e, http, t["refresh_token"])
    assert cause(e, "access_token") == (400, "invalid_grant", "deactivated")
    assert e.emu.user_by_email(ADMIN).active is False  # type: ignore[union-attr]
    assert e.control("POST", "revoke", {"user": "nobody@example.com"}) == {"revoked": 0}


@pytest.mark.parametrize(
    "body",
    [
        {},
        [ADMIN],
        {"email": ADMIN},
        {"email": "nobody@example.com", "active": False},
        {"email": ADMIN, "roles": "Full_Admin"},
        {"email": ADMIN, "roles": [1]},
        {"email": ADMIN, "org_id": "not-a-uuid", "roles": []},
        {"email": ADMIN, "active": "no", "roles": []},
        {"email": ADMIN, "password_changed": 1},
        {"email": ADMIN, "password": "x"},
    ],
)
def test_users_route_refuses_bad_input_and_changes_nothing(
    e: InProc, http: httpx2.Client, body: Any
) -> None:
    t = login(e, http)
    r = http.post("/_emulator/users", json=body)
    assert r.status_code == 400 and r.json()["ok"] is False and r.json()["error"]
    user = e.emu.user_by_email(ADMIN)
    assert user is not None and user.roles == ["Full_Admin"] and user.active
    assert user.org_uuid == e.info["org_id"]
    assert refresh(e, http, t["refresh_token"]).status_code == 200


# --- blocking an integration ------------------------------------------------------------------


def test_blocking_ends_existing_grants_and_unblocking_does_not_revive_them(
    e: InProc, http: httpx2.Client
) -> None:
    t = login(e, http)
    code = get_code(e, http)  # issued before the block
    blocked = e.control("POST", "block", {"client_id": e.client_id})
    assert blocked == {"ok": True, "blocked": True, "revoked": 1}
    assert answer(refresh(e, http, t["refresh_token"])) == REFUSED_REFRESH
    assert answer(me(http, t["access_token"])) == DEAD_TOKEN
    assert cause(e, "people_me") == (401, "invalid_token", "blocked")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    exchange = token_req(e, http, **form)
    assert exchange.status_code == 400 and "invalid_grant" in exchange.text
    assert cause(e, "access_token") == (400, "invalid_grant", "blocked")
    q = parse_qs(urlsplit(authorize(e, http).headers["location"]).query)
    assert q["error"] == ["access_denied"]
    assert cause(e, "authorize") == (302, "access_denied", "blocked")
    assert e.control("POST", "block", {"client_id": e.client_id, "blocked": False})["revoked"] == 0
    assert refresh(e, http, t["refresh_token"]).status_code == 400
    assert refresh(e, http, login(e, http)["refresh_token"]).status_code == 200


def test_a_block_can_leave_existing_grants_alone(e: InProc, http: httpx2.Client) -> None:
    e.policy(revoke_on_block=False)
    t = login(e, http)
    assert e.control("POST", "block", {"client_id": e.client_id})["revoked"] == 0
    assert refresh(e, http, t["refresh_token"]).status_code == 200
    assert me(http, t["access_token"]).status_code == 200
    q = parse_qs(urlsplit(authorize(e, http).headers["location"]).query)
    assert q["error"] == ["access_denied"]


def test_block_refuses_a_device_sign_in(e: InProc, http: httpx2.Client) -> None:
    dev = http.post(
        "/v1/device/authorize", data={"client_id": e.client_id, "scope": "spark:kms"}
    ).json()
    e.control("POST", "block", {"client_id": e.client_id})
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
    }
    r = http.post("/v1/device/token", data=form, auth=(e.client_id, e.client_secret))
    assert r.status_code == 400
    assert r.json()["errors"][0]["description"].startswith("access_denied: ")
    assert cause(e, "device_token") == (400, "access_denied", "blocked")


def test_block_refuses_bad_input(e: InProc, http: httpx2.Client) -> None:
    for body in ({"client_id": "Cnobody"}, {"client_id": e.client_id, "blocked": "yes"}):
        assert http.post("/_emulator/block", json=body).status_code == 400
    assert not e.emu.integrations[e.client_id].blocked


# --- reset and the state file -----------------------------------------------------------------


def test_reset_undoes_user_changes_and_blocks(e: InProc, http: httpx2.Client) -> None:
    change(http, email=ADMIN, roles=[], org_id=NEW_ORG, active=False)
    change(http, email=ADMIN, roles=["User_Admin"])  # a second change keeps the first original
    e.control("POST", "block", {"client_id": e.client_id})
    e.control("POST", "reset")
    user = e.emu.user_by_email(ADMIN)
    assert user is not None and (user.roles, user.org_uuid, user.active) == (
        ["Full_Admin"],
        e.info["org_id"],
        True,
    )
    assert not e.emu.integrations[e.client_id].blocked
    assert refresh(e, http, login(e, http)["refresh_token"]).status_code == 200


def test_changes_and_causes_survive_the_state_file(e: InProc, http: httpx2.Client) -> None:
    e.policy(token_limit=5, revoke_on_block=False)
    t = login(e, http)
    change(http, email=ADMIN, roles=[], org_id=NEW_ORG)
    e.control("POST", "revoke", {"token": t["refresh_token"]})
    again = Emulator.restore(e.emu.snapshot(), clock=ManualClock(e.clock.now()))
    user = again.user_by_email(ADMIN)
    assert user is not None and (user.roles, user.org_uuid) == ([], NEW_ORG)
    assert (again.policy.token_limit, again.policy.revoke_on_block) == (5, False)
    assert {g.revoked_by for g in again.grants.values()} == {"revoked"}
    again.reset()
    assert again.user_by_email(ADMIN).org_uuid == e.info["org_id"]  # type: ignore[union-attr]
