"""Limits a grant runs into, in process: the token limit (`tokenlimit_reached`) at code
exchange, refresh and device sign-in; and each refresh-token expiry policy as a client sees it,
refreshing across simulated days moved by `POST /_emulator/clock`."""

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

DAY = 86400
FULL = 7775999  # a fresh refresh token's reported lifetime: 90 days, one second short
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


# --- refresh-token expiry across simulated days ------------------------------------------------


def refreshes_after(e: InProc, http: httpx2.Client, steps: list[float]) -> list[int]:
    """Sign in, then for each step: move the clock by the control API, refresh, and read the
    refresh token's remaining lifetime from the answer."""
    t = login(e, http)
    seen = []
    for seconds in steps:
        e.control("POST", "clock", {"advance": seconds})
        r = refresh(e, http, t["refresh_token"])
        assert r.status_code == 200, r.text
        seen.append(int(r.json()["refresh_token_expires_in"]))
    return seen


def test_sliding_expiry_resets_on_every_refresh(e: InProc, http: httpx2.Client) -> None:
    assert refreshes_after(e, http, [2 * DAY] * 5) == [FULL] * 5


def test_fixed_expiry_counts_down_from_sign_in(e: InProc, http: httpx2.Client) -> None:
    e.policy(refresh_expiry="fixed")
    assert refreshes_after(e, http, [2 * DAY] * 5) == [FULL - 2 * DAY * k for k in range(1, 6)]


def test_fixed_expiry_ends_the_grant_on_its_day(e: InProc, http: httpx2.Client) -> None:
    e.policy(refresh_expiry="fixed", refresh_ttl=5 * DAY)
    t = login(e, http)
    lifetimes = []
    for _ in range(4):
        e.control("POST", "clock", {"advance": DAY})
        lifetimes.append(refresh(e, http, t["refresh_token"]).json()["refresh_token_expires_in"])
    assert lifetimes == [4 * DAY - 1, 3 * DAY - 1, 2 * DAY - 1, DAY - 1]
    e.control("POST", "clock", {"advance": DAY})
    assert refresh(e, http, t["refresh_token"]).status_code == 400
    assert e.ledger()[-1]["cause"] == "expired"


def test_sliding_daily_resets_at_most_once_a_day(e: InProc, http: httpx2.Client) -> None:
    e.policy(refresh_expiry="sliding-daily")
    six_hours = DAY / 4
    seen = refreshes_after(e, http, [six_hours, six_hours, six_hours, DAY - 2 * six_hours, DAY])
    # The first refresh resets; within the next 24 h the same answer comes back, its lifetime
    # running down; a refresh a day after the reset resets again.
    assert seen == [FULL, FULL - 21600, FULL - 43200, FULL, FULL]


def test_sliding_daily_never_repeats_a_dead_access_token(e: InProc, http: httpx2.Client) -> None:
    e.policy(refresh_expiry="sliding-daily", access_ttl=3600)
    t = login(e, http)
    first = refresh(e, http, t["refresh_token"]).json()
    e.control("POST", "clock", {"advance": 7200})
    second = refresh(e, http, t["refresh_token"]).json()
    assert second["access_token"] != first["access_token"] and second["expires_in"] == 3599
    assert http.get("/v1/people/me", headers=bearer(second["access_token"])).status_code == 200
