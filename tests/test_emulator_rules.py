"""The emulator's rules, in process: every endpoint, error, policy, answer fault, the ledger and
the clock, as listed in the "Emulator contract" of shared/docs/webex-oauth.md.

Served through `EmulatorTransport` with a `ManualClock`, so lifetimes are exact and nothing
sleeps; what only a real connection or process shows stays in test_emulator.py.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests.emulator_inproc import InProc, inproc_fixture
from tests.emulator_requests import (
    TOKEN_RE,
    authorize,
    bearer,
    envelope_of,
    get_code,
    login,
    org_b64,
    refresh,
    token_req,
)
from wxtoken.emulator import AuthorizeRefused, Clock, ManualClock, SystemClock
from wxtoken.emulator.model import Reply
from wxtoken.emulator.router import render
from wxtoken.emulator.routes import WireRequest
from wxtoken.oauth import new_code_verifier, s256_challenge


@pytest.fixture
def e() -> Iterator[InProc]:
    yield from inproc_fixture(auto_approve=True)


@pytest.fixture
def http(e: InProc) -> httpx2.Client:
    return e.client(timeout=10)


# --- /v1/authorize ---------------------------------------------------------------------------


def test_authorize_errors_without_redirect(e: InProc, http: httpx2.Client) -> None:
    r = authorize(e, http, client_id="Cunknown")
    assert r.status_code == 400 and "Client Id is invalid" in envelope_of(r)
    r = authorize(e, http, redirect_uri="http://127.0.0.1:1/evil")
    assert r.status_code == 400 and "location" not in r.headers
    r = authorize(e, http, redirect_uri=None)  # two registered: must be named
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": "spark:kms not:registered"}, "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "S512"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
    ],
)
def test_authorize_error_redirects(
    e: InProc, http: httpx2.Client, over: dict[str, str | None], error: str
) -> None:
    r = authorize(e, http, **over)
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["error"] == [error] and q["state"] == ["S1"]


def test_authorize_oidc_scopes_and_plus_encoding(e: InProc, http: httpx2.Client) -> None:
    r = http.get(
        f"{e.base_url}/v1/authorize?client_id={e.client_id}&response_type=code"
        f"&redirect_uri={e.redirect_uri}&scope=openid+spark%3Akms&state=S1"
    )
    assert r.status_code == 302 and "code=" in r.headers["location"]


def test_consent_page_approve_and_deny(e: InProc, http: httpx2.Client) -> None:
    e.policy(auto_approve=False)
    page = authorize(e, http)
    assert page.status_code == 200 and "Accept" in page.text and "Decline" in page.text
    assert "admin@example.com" in page.text and "identity:tokens_write" in page.text
    txn = re.search(r'name="txn" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = http.post(f"{e.base_url}/v1/authorize/consent", data={"txn": txn, "decision": "deny"})
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["error"] == ["access_denied"] and q["state"] == ["S1"]
    # The transaction is single-use.
    r = http.post(f"{e.base_url}/v1/authorize/consent", data={"txn": txn, "decision": "approve"})
    assert r.status_code == 400
    page = authorize(e, http)
    txn = re.search(r'name="txn" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = http.post(f"{e.base_url}/v1/authorize/consent", data={"txn": txn, "decision": "approve"})
    assert "code=" in r.headers["location"] and "state=S1" in r.headers["location"]


def test_blocked_integration(e: InProc, http: httpx2.Client) -> None:
    e.control("POST", "block", {"client_id": e.client_id})
    q = parse_qs(urlsplit(authorize(e, http).headers["location"]).query)
    assert q["error"] == ["access_denied"]
    e.control("POST", "block", {"client_id": e.client_id, "blocked": False})


# --- /v1/access_token: authorization_code ----------------------------------------------------


def test_code_exchange_success_shape(e: InProc, http: httpx2.Client) -> None:
    code = get_code(e, http)
    assert TOKEN_RE.match(code)
    r = token_req(
        e,
        http,
        grant_type="authorization_code",
        code=code,
        redirect_uri=e.redirect_uri,
        self_contained_token="true",
        user_info="{}",
    )
    body = r.json()
    assert r.status_code == 200
    assert body["expires_in"] == 1209599 and body["refresh_token_expires_in"] == 7775999
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "spark:kms spark:people_read identity:tokens_read identity:tokens_write"
    assert TOKEN_RE.match(body["access_token"]) and TOKEN_RE.match(body["refresh_token"])
    assert body["access_token"].endswith(e.info["org_id"])
    assert "id_token" not in body
    assert r.headers["trackingid"].startswith("ROUTER_")


def test_tracking_id_echoed(e: InProc, http: httpx2.Client) -> None:
    r = http.post(f"{e.base_url}/v1/access_token", data={}, headers={"TrackingID": "MINE_1"})
    assert r.headers["trackingid"] == "MINE_1" and r.json()["trackingId"] == "MINE_1"


def test_basic_auth_and_disagreement(e: InProc, http: httpx2.Client) -> None:
    code = get_code(e, http)
    basic = base64.b64encode(f"{e.client_id}:{e.client_secret}".encode()).decode()
    r = http.post(
        f"{e.base_url}/v1/access_token",
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri},
    )
    assert r.status_code == 200
    r = http.post(
        f"{e.base_url}/v1/access_token",
        headers={"Authorization": f"Basic {basic}"},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": e.redirect_uri,
            "client_id": "Cother",
        },
    )
    assert r.status_code == 400 and "invalid_request" in envelope_of(r)


@pytest.mark.parametrize(
    ("form", "status", "needle"),
    [
        ({"client_id": "", "client_secret": ""}, 400, "invalid_request"),
        ({"client_secret": "0" * 64}, 401, "invalid_client"),
        ({"client_id": "Cnobody"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_endpoint_client_errors(
    e: InProc, http: httpx2.Client, form: dict[str, str], status: int, needle: str
) -> None:
    base = {"grant_type": "authorization_code", "code": "x", "redirect_uri": e.redirect_uri}
    r = token_req(e, http, **dict(base, **form))
    assert r.status_code == status and needle in envelope_of(r)


def test_invalid_client_status_and_rfc_keys_configurable(e: InProc, http: httpx2.Client) -> None:
    e.policy(invalid_client_status=400, rfc_error_keys=True)
    r = token_req(e, http, grant_type="refresh_token", refresh_token="x", client_secret="bad")
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_wrong_content_type(e: InProc, http: httpx2.Client) -> None:
    r = http.post(f"{e.base_url}/v1/access_token", json={"grant_type": "refresh_token"})
    assert r.status_code == 400 and "x-www-form-urlencoded" in envelope_of(r)
    r = http.post(
        f"{e.base_url}/v1/access_token",
        content=b"grant_type=x",
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "Authorization": "Basic "
            + base64.b64encode(f"{e.client_id}:{e.client_secret}".encode()).decode(),
        },
    )
    assert "unsupported_grant_type" in envelope_of(r)


def test_code_failures(e: InProc, http: httpx2.Client) -> None:
    def exchange(code: str, **extra: str) -> httpx2.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
        form.update(extra)
        return token_req(e, http, **form)

    assert "invalid" in envelope_of(exchange("nope"))
    code = get_code(e, http)
    assert "redirect_uri" in envelope_of(exchange(code, redirect_uri=e.redirect_uri + "x"))
    form = {"grant_type": "authorization_code", "code": code}
    assert "redirect_uri" in envelope_of(token_req(e, http, **form))
    assert exchange(code).status_code == 200
    again = exchange(code)
    assert again.status_code == 400 and "already been used" in envelope_of(again)
    code = get_code(e, http)
    e.advance(301)
    assert "expired" in envelope_of(exchange(code))


def test_code_reuse_can_revoke_tokens(e: InProc, http: httpx2.Client) -> None:
    e.policy(revoke_on_code_reuse=True)
    code = get_code(e, http)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    tokens = token_req(e, http, **form).json()
    token_req(e, http, **form)
    assert refresh(e, http, tokens["refresh_token"]).status_code == 400


def test_pkce(e: InProc, http: httpx2.Client) -> None:
    verifier = new_code_verifier()
    for method, challenge in (
        ("S256", s256_challenge(verifier)),
        ("plain", verifier),
        (None, verifier),
    ):
        over = {"code_challenge": challenge, "code_challenge_method": method}
        base = {"grant_type": "authorization_code", "redirect_uri": e.redirect_uri}
        for bad in (None, "short", new_code_verifier()):
            code = get_code(e, http, **over)
            form = dict(base, code=code)
            if bad is not None:
                form["code_verifier"] = bad
            r = token_req(e, http, **form)
            assert r.status_code == 400 and "code_verifier" in envelope_of(r)
        code = get_code(e, http, **over)
        r = token_req(e, http, **dict(base, code=code, code_verifier=verifier))
        assert r.status_code == 200, (method, r.text)


def test_code_issued_to_another_client(e: InProc, http: httpx2.Client) -> None:
    code = get_code(e, http)
    app = e.info["service_app"]
    r = http.post(
        f"{e.base_url}/v1/access_token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": e.redirect_uri,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert "another client" in envelope_of(r)


# --- /v1/access_token: refresh_token and policies --------------------------------------------


def test_refresh_never_rotates_and_slides(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    e.advance(86400 * 10)
    r = refresh(e, http, t["refresh_token"]).json()
    assert r["refresh_token"] == t["refresh_token"]
    assert r["access_token"] != t["access_token"]
    assert r["refresh_token_expires_in"] == 7775999  # sliding: reset to the full lifetime
    # The old access token stays valid until its own expiry.
    assert http.get(f"{e.base_url}/v1/people/me", headers=bearer(t["access_token"])).is_success


def test_refresh_fixed_expiry(e: InProc, http: httpx2.Client) -> None:
    e.policy(refresh_expiry="fixed")
    t = login(e, http)
    e.advance(1000)
    assert refresh(e, http, t["refresh_token"]).json()["refresh_token_expires_in"] < 7775000
    e.advance(7776000)
    r = refresh(e, http, t["refresh_token"])
    assert r.status_code == 400 and "expired" in envelope_of(r)


def test_refresh_sliding_daily_repeats_within_24h(e: InProc, http: httpx2.Client) -> None:
    e.policy(refresh_expiry="sliding-daily")
    t = login(e, http)
    first = refresh(e, http, t["refresh_token"]).json()
    e.advance(3600)
    second = refresh(e, http, t["refresh_token"]).json()
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] < first["expires_in"]
    e.advance(86400)
    third = refresh(e, http, t["refresh_token"]).json()
    assert third["access_token"] != first["access_token"]
    assert third["refresh_token_expires_in"] == 7775999


def test_rotate_always(e: InProc, http: httpx2.Client) -> None:
    e.policy(rotate="always")
    t = login(e, http)
    r = refresh(e, http, t["refresh_token"]).json()
    assert r["refresh_token"] != t["refresh_token"]
    assert refresh(e, http, t["refresh_token"]).status_code == 400
    assert refresh(e, http, r["refresh_token"]).status_code == 200


def test_rotate_grace(e: InProc, http: httpx2.Client) -> None:
    e.policy(rotate="grace", grace_seconds=60)
    t = login(e, http)
    new = refresh(e, http, t["refresh_token"]).json()["refresh_token"]
    again = refresh(e, http, t["refresh_token"])
    assert again.status_code == 200 and again.json()["refresh_token"] == new
    e.advance(61)
    assert refresh(e, http, t["refresh_token"]).status_code == 400
    assert refresh(e, http, new).status_code == 200


def test_rotate_reuse_kills_family(e: InProc, http: httpx2.Client) -> None:
    e.policy(rotate="reuse-kills-family")
    t = login(e, http)
    new = refresh(e, http, t["refresh_token"]).json()
    assert refresh(e, http, t["refresh_token"]).status_code == 400
    assert refresh(e, http, new["refresh_token"]).status_code == 400
    me = http.get(f"{e.base_url}/v1/people/me", headers=bearer(new["access_token"]))
    assert me.status_code == 401


def test_revoke_previous_access_on_refresh(e: InProc, http: httpx2.Client) -> None:
    e.policy(revoke_previous_access_on_refresh=True)
    t = login(e, http)
    refresh(e, http, t["refresh_token"])
    assert (
        http.get(f"{e.base_url}/v1/people/me", headers=bearer(t["access_token"])).status_code == 401
    )


def test_reuse_refresh_per_user_client(e: InProc, http: httpx2.Client) -> None:
    e.policy(reuse_refresh_per_user_client=True)
    t1 = login(e, http)
    e.advance(100)
    t2 = login(e, http)
    assert t2["refresh_token"] == t1["refresh_token"]
    assert t2["refresh_token_expires_in"] < t1["refresh_token_expires_in"]


def test_refresh_failures(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    assert "required" in envelope_of(token_req(e, http, grant_type="refresh_token"))
    assert "invalid" in envelope_of(refresh(e, http, "bogus"))
    app = e.info["service_app"]
    r = http.post(
        f"{e.base_url}/v1/access_token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": t["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert "another client" in envelope_of(r)
    e.control("POST", "revoke", {"user": "admin@example.com", "deactivate": False})
    assert refresh(e, http, t["refresh_token"]).status_code == 400


def test_lifetimes_from_policy(e: InProc, http: httpx2.Client) -> None:
    e.policy(access_ttl=20, refresh_ttl=60)
    t = login(e, http)
    assert t["expires_in"] == 19 and t["refresh_token_expires_in"] == 59
    e.advance(61)
    assert refresh(e, http, t["refresh_token"]).status_code == 400


# --- bearer-protected resources ---------------------------------------------------------------


def test_people_me_and_token_expiry(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    r = http.get(f"{e.base_url}/v1/people/me")
    assert r.status_code == 401 and "valid access token" in r.json()["message"]
    me = http.get(f"{e.base_url}/v1/people/me", headers=bearer(t["access_token"])).json()
    assert me["emails"] == ["admin@example.com"] and me["type"] == "person"
    assert base64.b64decode(me["orgId"] + "==").decode().endswith(e.info["org_id"])
    exp = http.get(
        f"{e.base_url}/v1/authorizations/tokenExpiry", headers=bearer(t["access_token"])
    ).json()["exp"]
    assert exp == int((e.clock.now() + 1209600) * 1000)
    e.advance(1209601)
    assert (
        http.get(f"{e.base_url}/v1/people/me", headers=bearer(t["access_token"])).status_code == 401
    )


def test_missing_scope_is_403(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http, scope="spark:kms")
    r = http.get(f"{e.base_url}/v1/people/me", headers=bearer(t["access_token"]))
    assert r.status_code == 403 and "missing required scopes" in r.json()["message"]


def test_authorizations_list_and_delete(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    url = f"{e.base_url}/v1/authorizations"
    assert http.get(url, headers=bearer(t["access_token"])).status_code == 400
    assert (
        http.get(
            url, params={"personEmail": "a", "personId": "b"}, headers=bearer(t["access_token"])
        ).status_code
        == 400
    )
    items = http.get(
        url, params={"personEmail": "admin@example.com"}, headers=bearer(t["access_token"])
    ).json()["items"]
    assert sorted(i["type"] for i in items) == ["access", "refresh"]
    assert all(i["clientId"] == e.client_id for i in items)
    assert http.delete(f"{url}/nope", headers=bearer(t["access_token"])).status_code == 404
    t2 = login(e, http)
    refresh_item = next(i for i in items if i["type"] == "refresh")
    assert (
        http.delete(f"{url}/{refresh_item['id']}", headers=bearer(t2["access_token"])).status_code
        == 204
    )
    assert (
        http.get(f"{e.base_url}/v1/people/me", headers=bearer(t["access_token"])).status_code == 401
    )
    assert http.delete(url, headers=bearer(t2["access_token"])).status_code == 400
    assert (
        http.delete(
            url, params={"clientId": e.client_id}, headers=bearer(t2["access_token"])
        ).status_code
        == 204
    )
    assert refresh(e, http, t2["refresh_token"]).status_code == 400


def test_authorizations_need_admin(e: InProc, http: httpx2.Client) -> None:
    e.control("POST", "consent-user", {"email": "user@example.com"})
    t = login(e, http)
    r = http.get(
        f"{e.base_url}/v1/authorizations",
        params={"personEmail": "user@example.com"},
        headers=bearer(t["access_token"]),
    )
    assert r.status_code == 403
    r = http.delete(
        f"{e.base_url}/v1/authorizations",
        params={"clientId": e.client_id},
        headers=bearer(t["access_token"]),
    )
    assert r.status_code == 403


def test_device_grant(e: InProc, http: httpx2.Client) -> None:
    e.policy(auto_approve=False)
    r = http.post(
        f"{e.base_url}/v1/device/authorize", data={"client_id": e.client_id, "scope": "spark:kms"}
    )
    dev = r.json()
    assert set(dev) >= {"device_code", "user_code", "verification_uri", "interval", "expires_in"}
    assert re.fullmatch(r"\d{6}", dev["user_code"])
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
        "client_id": e.client_id,
    }
    auth = (e.client_id, e.client_secret)
    assert http.post(f"{e.base_url}/v1/device/token", data=form, auth=auth).status_code == 428
    slow = http.post(f"{e.base_url}/v1/device/token", data=form, auth=auth)
    assert slow.status_code == 400 and "slow_down" in envelope_of(slow)
    page = http.get(dev["verification_uri_complete"])
    assert dev["user_code"] in page.text
    http.post(dev["verification_uri"], data={"userCode": dev["user_code"], "decision": "approve"})
    done = http.post(f"{e.base_url}/v1/device/token", data=form, auth=auth)
    assert done.status_code == 200 and done.json()["scope"] == "spark:kms"
    bad = http.post(f"{e.base_url}/v1/device/authorize", data={"client_id": "nope"})
    assert bad.status_code == 400


def test_device_denied(e: InProc, http: httpx2.Client) -> None:
    e.policy(auto_approve=False)
    dev = http.post(
        f"{e.base_url}/v1/device/authorize", data={"client_id": e.client_id, "scope": "spark:kms"}
    ).json()
    e.control("POST", "device", {"user_code": dev["user_code"], "approve": False})
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
        "client_id": e.client_id,
    }
    r = http.post(f"{e.base_url}/v1/device/token", data=form, auth=(e.client_id, e.client_secret))
    assert "access_denied" in envelope_of(r)


def test_service_app_token(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http, scope="spark:applications_token spark:people_read")
    app = e.info["service_app"]
    url = f"{e.base_url}/v1/applications/{app['application_id']}/token"
    body = {
        "clientId": app["client_id"],
        "clientSecret": app["client_secret"],
        "targetOrgId": org_b64(e),
    }
    r = http.post(url, json=body, headers=bearer(t["access_token"]))
    assert r.status_code == 200 and "scope" not in r.json()
    sa = r.json()
    # The service app refreshes through the normal refresh grant with its own credentials.
    rr = http.post(
        f"{e.base_url}/v1/access_token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": sa["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert rr.status_code == 200
    assert (
        http.post(url, json={"clientId": "x"}, headers=bearer(t["access_token"])).status_code == 400
    )
    assert http.post(url, json=body).status_code == 401
    assert (
        http.post(
            url, json=dict(body, clientSecret="bad"), headers=bearer(t["access_token"])
        ).json()["message"]
        == "Invalid client credentials"
    )
    assert (
        http.post(
            url, json=dict(body, targetOrgId="other"), headers=bearer(t["access_token"])
        ).status_code
        == 403
    )
    assert (
        http.post(
            f"{e.base_url}/v1/applications/nope/token", json=body, headers=bearer(t["access_token"])
        ).status_code
        == 404
    )
    t2 = login(e, http, scope="spark:kms")
    assert http.post(url, json=body, headers=bearer(t2["access_token"])).status_code == 403


def test_messages(e: InProc, http: httpx2.Client) -> None:
    url = f"{e.base_url}/v1/messages"
    bot = bearer(e.info["bot_token"])
    r = http.post(
        url, json={"roomId": "R1", "text": "refresh token expires in 7 days"}, headers=bot
    )
    assert r.status_code == 200 and r.json()["roomId"] == "R1"
    assert http.post(url, json={"text": "no room"}, headers=bot).status_code == 400
    assert http.post(url, json={"roomId": "R1", "text": "x"}).status_code == 401
    items = e.control("GET", "messages")["items"]
    assert [m["text"] for m in items] == ["refresh token expires in 7 days"]


def test_discovery(e: InProc, http: httpx2.Client) -> None:
    doc = http.get(f"{e.base_url}/v1/.well-known/openid-configuration").json()
    assert doc["token_endpoint"] == f"{e.base_url}/v1/access_token"


# --- faults, clock, ledger ---------------------------------------------------------------------


def test_fault_status_with_retry_after(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    e.fault("status", status=429, retry_after="7", count=2)
    for _ in range(2):
        r = refresh(e, http, t["refresh_token"])
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert refresh(e, http, t["refresh_token"]).status_code == 200
    for status in (500, 502, 503, 423):
        e.fault("status", status=status, body="empty")
        r = refresh(e, http, t["refresh_token"])
        assert r.status_code == status and r.content == b""


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("html", lambda r: r.status_code == 502 and r.text.startswith("<html>")),
        ("malformed", lambda r: r.status_code == 200 and r.content.startswith(b"{'")),
        ("truncated", lambda r: r.status_code == 200 and r.content == b'{"access_token": "abc'),
        ("huge", lambda r: len(r.content) > 2_000_000),
    ],
)
def test_fault_bodies(e: InProc, http: httpx2.Client, kind: str, check: Any) -> None:
    t = login(e, http)
    e.fault(kind)
    assert check(refresh(e, http, t["refresh_token"]))


def test_fault_any_endpoint_and_listing(e: InProc, http: httpx2.Client) -> None:
    e.fault("status", endpoint="*", status=503, count=3)
    assert len(e.control("GET", "faults")["faults"]) == 1
    assert http.get(f"{e.base_url}/v1/people/me").status_code == 503
    e.control("DELETE", "faults")
    assert http.get(f"{e.base_url}/v1/people/me").status_code == 401


def test_control_api_rejects_bad_input(e: InProc) -> None:
    for path, body in (
        ("faults", {"kind": "nope"}),
        ("policy", {"rotate": "sometimes"}),
        ("policy", {"unknown": 1}),
        ("clock", {"advance": "x"}),
    ):
        with pytest.raises(httpx2.HTTPStatusError):
            e.control("POST", path, body)
    assert e.control("GET", "policy")["rotate"] == "never"


def test_ledger_has_fingerprints_not_secrets(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    refresh(e, http, t["refresh_token"])
    text = json.dumps(e.ledger())
    for secret in (t["refresh_token"], t["access_token"], e.client_secret):
        assert secret[:20] not in text
    kinds = [(x["endpoint"], x.get("grant_type")) for x in e.ledger()]
    assert ("access_token", "refresh_token") in kinds and ("authorize", None) in kinds


# --- the injected clock ------------------------------------------------------------------------


def test_manual_and_system_clocks() -> None:
    manual = ManualClock(1000.0)
    assert isinstance(manual, Clock) and isinstance(SystemClock(), Clock)
    manual.advance(2.5)
    assert manual.now() == manual() == 1002.5
    manual.reset()
    assert manual() == 1000.0
    wall = SystemClock(offset=3600)
    assert abs(wall.now() - (time.time() + 3600)) < 5
    wall.advance(-3600)
    assert abs(wall() - time.time()) < 5 and wall.offset == 0


def test_every_reading_of_time_is_the_injected_clock(e: InProc, http: httpx2.Client) -> None:
    e.advance(12.25)
    now = e.clock.now()
    t = login(e, http)
    access = e.emu.access[t["access_token"]]
    grant = e.emu.grants[access.grant_id or ""]
    assert access.created == grant.created == grant.last_reset_at == now
    assert access.expires_at == now + 1209600 and grant.refresh_expires_at == now + 7776000
    assert all(x["at"] == round(now, 3) for x in e.ledger())
    assert all(c.issued_at == now for c in e.emu.codes.values())


def test_control_api_moves_a_manual_clock(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http, scope="spark:kms spark:people_read")
    moved = e.control("POST", "clock", {"advance": 1209600})
    assert moved["now"] == e.clock.now() == e.clock.start + 1209600
    assert http.get("/v1/people/me", headers=bearer(t["access_token"])).status_code == 401
    e.control("POST", "reset")
    assert e.clock.now() == e.clock.start


def test_the_same_clock_object_serves_a_plain_callable(e: InProc) -> None:
    # Our own code takes `clock: Callable[[], float]`; the emulator's clock is one.
    reading: Callable[[], float] = e.clock
    e.advance(60)
    assert reading() == e.emu.now() == e.clock.start + 60


# --- signing in without a browser --------------------------------------------------------------


@pytest.fixture
def consenting() -> Iterator[InProc]:
    yield from inproc_fixture()  # the consent page is on, as for a real sign-in


def test_authorization_code_binds_the_pkce_challenge(consenting: InProc) -> None:
    e = consenting
    verifier = new_code_verifier()
    code = e.emu.authorization_code(
        e.client_id,
        e.redirect_uri,
        ["spark:kms", "spark:people_read"],
        code_challenge=s256_challenge(verifier),
        code_challenge_method="S256",
    )
    http = e.client()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    refused = token_req(e, http, **form)  # the code is bound to the challenge
    assert refused.status_code == 400 and "code_verifier" in envelope_of(refused)
    code = e.emu.authorization_code(
        e.client_id, e.redirect_uri, ["spark:kms"], code_challenge=s256_challenge(verifier)
    )  # no method: plain, as RFC 7636 says; so the S256 challenge itself is the verifier
    assert token_req(e, http, **dict(form, code=code, code_verifier=verifier)).status_code == 400
    code = e.emu.authorization_code(
        e.client_id,
        e.redirect_uri,
        ["spark:kms"],
        code_challenge=s256_challenge(verifier),
        code_challenge_method="S256",
        state="xyz",
    )
    ok = token_req(e, http, **dict(form, code=code, code_verifier=verifier))
    assert ok.status_code == 200 and ok.json()["scope"] == "spark:kms"
    outcomes = [(x["endpoint"], x["status"], x.get("outcome")) for x in e.ledger()]
    assert outcomes[:2] == [("authorize", 200, "consent_page"), ("authorize", 302, "approved")]


def test_authorization_code_as_another_user(e: InProc, http: httpx2.Client) -> None:
    code = e.emu.authorization_code(
        e.client_id, e.redirect_uri, ["spark:people_read"], user="user@example.com"
    )
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    tokens = token_req(e, http, **form).json()
    me = http.get("/v1/people/me", headers=bearer(tokens["access_token"])).json()
    assert me["emails"] == ["user@example.com"]
    # The consent page's user is unchanged for everyone else.
    admin = login(e, http)["access_token"]
    assert http.get("/v1/people/me", headers=bearer(admin)).json()["emails"] == [
        "admin@example.com"
    ]
    with pytest.raises(ValueError, match="no emulated user"):
        e.emu.authorization_code(e.client_id, e.redirect_uri, ["spark:kms"], user="x@y.z")


@pytest.mark.parametrize(
    ("change", "args", "error"),
    [
        (None, {"client_id": "Cunknown"}, "invalid_client"),
        (None, {"redirect_uri": "http://127.0.0.1:1/evil"}, "invalid_request"),
        (None, {"scopes": ["spark:kms", "not:registered"]}, "invalid_scope"),
        (None, {"scopes": []}, "invalid_scope"),
        (None, {"code_challenge": "x" * 43, "code_challenge_method": "S512"}, "invalid_request"),
        ("block", {}, "access_denied"),
        ("deactivate", {}, "access_denied"),
    ],
)
def test_authorization_code_applies_the_consent_rules(
    e: InProc, change: str | None, args: dict[str, Any], error: str
) -> None:
    if change == "block":
        e.control("POST", "block", {"client_id": e.client_id})
    if change == "deactivate":
        e.control("POST", "revoke", {"user": "admin@example.com", "deactivate": True})
    call: dict[str, Any] = {
        "client_id": e.client_id,
        "redirect_uri": e.redirect_uri,
        "scopes": ["spark:kms"],
    }
    call.update(args)
    with pytest.raises(AuthorizeRefused) as refused:
        e.emu.authorization_code(**call)
    assert refused.value.error == error
    assert not e.emu.codes


def test_reprs_hold_no_secrets(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    code = get_code(e, http)
    emu = e.emu
    records: list[Any] = [emu, *emu.integrations.values(), *emu.service_apps.values()]
    records += [*emu.codes.values(), *emu.grants.values(), *emu.access.values()]
    form = {"client_secret": e.client_secret, "code": code}
    records.append(WireRequest("POST", "/v1/access_token", "", {"authorization": "x"}, b""))
    records.append(render(Reply(200, form, {"location": f"http://x/?code={code}"}), None))
    secrets = [e.client_secret, e.info["service_app"]["client_secret"], code]
    secrets += [t["access_token"], t["refresh_token"]]
    texts = [repr(r) for r in records]
    leaked = [i for i, s in enumerate(secrets) if any(s.split("_")[0] in x for x in texts)]
    assert leaked == [], "secrets (by position in the list) appear in reprs"
