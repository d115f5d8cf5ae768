"""/v1/access_token, in process: client authentication, the code grant (PKCE, reuse, expiry,
redirect URI) and the refresh grant under every rotation and expiry policy, on a ManualClock so
lifetimes are exact."""

from __future__ import annotations

import base64

import httpx2
import pytest

from tests.emulator_inproc import InProc
from tests.emulator_requests import (
    TOKEN_RE,
    bearer,
    envelope_of,
    get_code,
    login,
    refresh,
    token_req,
)
from wxtoken.oauth import new_code_verifier, s256_challenge

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures

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
    assert r.status_code == 400 and "invalid_grant" in envelope_of(r)
    assert e.ledger()[-1]["cause"] == "expired"  # the answer is the same for every cause


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
    assert "invalid_grant" in envelope_of(r) and e.ledger()[-1]["cause"] == "other_client"
    e.control("POST", "revoke", {"user": "admin@example.com", "deactivate": False})
    assert refresh(e, http, t["refresh_token"]).status_code == 400


def test_lifetimes_from_policy(e: InProc, http: httpx2.Client) -> None:
    e.policy(access_ttl=20, refresh_ttl=60)
    t = login(e, http)
    assert t["expires_in"] == 19 and t["refresh_token_expires_in"] == 59
    e.advance(61)
    assert refresh(e, http, t["refresh_token"]).status_code == 400
