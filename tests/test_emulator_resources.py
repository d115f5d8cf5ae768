"""Bearer-protected resources and the other grants, in process: people/me, tokenExpiry,
authorizations (list, delete, admin only), the device grant, service-app minting, messages and
discovery."""

from __future__ import annotations

import base64
import re

import httpx2

from tests.emulator_inproc import InProc
from tests.emulator_requests import bearer, envelope_of, login, org_b64, refresh

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures

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


def test_people_list_pages_with_link_headers(e: InProc, http: httpx2.Client) -> None:
    """An admin lists the org a page at a time, following `Link: <...>; rel="next"`; a
    non-admin may only look one person up by email; a bad page size is a 400."""
    at = login(e, http)["access_token"]
    url: str | None = f"{e.base_url}/v1/people?max=1"
    seen, pages = [], 0
    while url:
        r = http.get(url, headers=bearer(at))
        assert r.status_code == 200, r.text
        seen += [p["emails"][0] for p in r.json()["items"]]
        pages += 1
        link = r.headers.get("link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link)[1] if link else None  # type: ignore[index]
    assert seen == ["admin@example.com", "user@example.com"] and pages == 2
    one = http.get("/v1/people?email=user@example.com", headers=bearer(at)).json()["items"]
    assert [p["displayName"] for p in one] == ["Uma User"]
    assert http.get("/v1/people?max=0", headers=bearer(at)).status_code == 400
    assert http.get("/v1/people").status_code == 401
    e.control("POST", "consent-user", {"email": "user@example.com"})
    plain = login(e, http)["access_token"]
    assert http.get("/v1/people", headers=bearer(plain)).status_code == 403
    mine = http.get("/v1/people?email=user@example.com", headers=bearer(plain))
    assert mine.status_code == 200 and len(mine.json()["items"]) == 1
