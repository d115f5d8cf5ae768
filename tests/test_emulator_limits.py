"""Limits a grant runs into, in process: the token limit (`tokenlimit_reached`) at code
exchange, refresh and device sign-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.emulator_inproc import InProc, start_inproc
from tests.emulator_requests import bearer, get_code, login, refresh, token_req
from wxtoken.emulator.model import MSG_400, TOKEN_LIMIT_REACHED
from wxtoken.errors import UsageError

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures

LIMITED = {
    "message": MSG_400,
    "errors": [{"description": f"tokenlimit_reached: {TOKEN_LIMIT_REACHED}"}],
}


def body_of(r: httpx2.Response) -> dict[str, Any]:
    body = dict(r.json())
    assert body.pop("trackingId") == r.headers["trackingid"]
    return body


def limit_entries(e: InProc, mark: int) -> list[tuple[str, int, str | None, str | None]]:
    return [
        (x["grant_type"], x["status"], x.get("error"), x.get("cause"))
        for x in e.ledger(mark)
        if x["endpoint"] == "access_token"
    ]


# --- the token limit --------------------------------------------------------------------------


def test_token_limit_refuses_a_refresh_and_a_sign_in(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)  # one live access token
    assert e.policy(token_limit=2)["token_limit"] == 2
    mark = e.mark()
    assert refresh(e, http, t["refresh_token"]).status_code == 200  # the second
    r = refresh(e, http, t["refresh_token"])
    assert r.status_code == 400 and body_of(r) == LIMITED
    code = get_code(e, http)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    assert body_of(token_req(e, http, **form)) == LIMITED
    assert limit_entries(e, mark) == [
        ("refresh_token", 200, None, None),
        ("refresh_token", 400, "tokenlimit_reached", "token_limit"),
        ("authorization_code", 400, "tokenlimit_reached", "token_limit"),
    ]
    # The refused code is spent, as any presented code is.
    again = token_req(e, http, **form)
    assert again.status_code == 400 and "invalid_grant" in again.text
    # Refused, the grant is untouched: once the old access tokens expire, refreshing works.
    e.control("POST", "clock", {"advance": 1209600})
    fresh = refresh(e, http, t["refresh_token"])
    assert fresh.status_code == 200 and fresh.json()["refresh_token"] == t["refresh_token"]


def test_token_limit_counts_per_user_and_integration(e: InProc, http: httpx2.Client) -> None:
    e.policy(token_limit=1)
    login(e, http)
    code = e.emu.authorization_code(
        e.client_id, e.redirect_uri, ["spark:kms"], user="user@example.com"
    )
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
    assert token_req(e, http, **form).status_code == 200  # another user
    code = get_code(e, http)
    assert token_req(e, http, **dict(form, code=code)).status_code == 400  # the same user


def test_token_limit_spares_tokens_a_refresh_revokes(e: InProc, http: httpx2.Client) -> None:
    e.policy(token_limit=1, revoke_previous_access_on_refresh=True)
    t = login(e, http)
    for _ in range(3):
        r = refresh(e, http, t["refresh_token"])
        assert r.status_code == 200
    assert http.get("/v1/people/me", headers=bearer(r.json()["access_token"])).status_code == 200


def test_token_limit_with_rfc_keys_and_lifted(e: InProc, http: httpx2.Client) -> None:
    t = login(e, http)
    e.policy(token_limit=1, rfc_error_keys=True)
    r = refresh(e, http, t["refresh_token"])
    assert r.json()["error"] == "tokenlimit_reached"
    assert r.json()["error_description"] == f"tokenlimit_reached: {TOKEN_LIMIT_REACHED}"
    assert e.policy(token_limit=None)["token_limit"] is None
    assert refresh(e, http, t["refresh_token"]).status_code == 200


def test_token_limit_refuses_a_device_sign_in(e: InProc, http: httpx2.Client) -> None:
    e.policy(token_limit=0)
    dev = http.post(
        "/v1/device/authorize", data={"client_id": e.client_id, "scope": "spark:kms"}
    ).json()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
    }
    r = http.post("/v1/device/token", data=form, auth=(e.client_id, e.client_secret))
    assert r.status_code == 400 and body_of(r) == LIMITED
    entry = e.ledger()[-1]
    assert (entry["endpoint"], entry["error"], entry["cause"]) == (
        "device_token",
        "tokenlimit_reached",
        "token_limit",
    )


@pytest.mark.parametrize("value", [-1, "3", True, 1.5])
def test_token_limit_refuses_bad_values(e: InProc, http: httpx2.Client, value: Any) -> None:
    r = http.post("/_emulator/policy", json={"token_limit": value})
    assert r.status_code == 400 and "token_limit" in r.json()["error"]
    assert e.control("GET", "policy")["token_limit"] is None


def test_token_limit_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "emu.toml"
    config.write_text(
        "[policy]\ntoken_limit = 1\nauto_approve = true\n\n"
        '[[users]]\nemail = "a@example.com"\n\n'
        '[[integrations]]\nclient_id = "Cone"\nclient_secret = "s"\n'
        'redirect_uris = ["http://127.0.0.1:8765/callback"]\nscopes = ["spark:kms"]\n'
    )
    e = start_inproc(config=config)
    try:
        http = e.client()
        code = e.emu.authorization_code("Cone", e.redirect_uri, ["spark:kms"])
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": e.redirect_uri}
        creds = {"client_id": "Cone", "client_secret": "s"}
        t = http.post("/v1/access_token", data=dict(form, **creds)).json()
        r = http.post(
            "/v1/access_token",
            data=dict(creds, grant_type="refresh_token", refresh_token=t["refresh_token"]),
        )
        assert r.status_code == 400 and "tokenlimit_reached" in r.text
    finally:
        e.close()
    config.write_text("[policy]\ntoken_limit = -2\n")
    with pytest.raises(UsageError, match="token_limit"):
        start_inproc(config=config)
