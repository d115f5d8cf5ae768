"""/v1/authorize and its consent page, in process: refusals in place or by redirect, the
consent transaction, a blocked integration, and `Emulator.authorization_code` (the browser's
part of a sign-in for tests), which must refuse exactly what the page refuses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests.emulator_inproc import InProc, inproc_fixture
from tests.emulator_requests import authorize, bearer, envelope_of, login, token_req
from wxtoken.emulator import AuthorizeRefused
from wxtoken.oauth import new_code_verifier, s256_challenge

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures

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
