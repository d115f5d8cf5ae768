"""Faults, the control API, the ledger and the injected clock, in process; and that no record
or request of the emulator prints a secret in its repr."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.emulator_inproc import InProc
from tests.emulator_requests import bearer, get_code, login, refresh, token_req
from wxtoken.emulator import Clock, ManualClock, SystemClock
from wxtoken.emulator.model import Reply, fp
from wxtoken.emulator.router import render
from wxtoken.emulator.routes import WireRequest

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures

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


def test_client_secrets_are_added_revoked_and_regenerated(e: InProc, http: httpx2.Client) -> None:
    """A rotation as the control API plays it: two accepted at once, either one revoked, and
    the portal's regenerate, after which only the new one works. A refused secret is in the
    ledger by fingerprint only."""
    t = login(e, http)
    first = e.client_secret

    def refresh_with(secret: str) -> int:
        r = token_req(
            e, http, grant_type="refresh_token", refresh_token=t["refresh_token"],
            client_secret=secret,
        )  # fmt: skip
        return r.status_code

    assert e.control("POST", "client-secrets", {"client_id": e.client_id, "add": "S2"})["held"] == 2
    assert refresh_with("S2") == 200 and refresh_with(first) == 200
    e.control("POST", "client-secrets", {"client_id": e.client_id, "revoke": first})
    assert refresh_with(first) == 401 and refresh_with("S2") == 200
    refused = [x for x in e.control("GET", "ledger")["entries"] if x.get("error")]
    assert refused[-1]["secret_fp"] == fp(first) and first not in json.dumps(refused)
    new = e.control("POST", "client-secrets", {"client_id": e.client_id, "regenerate": True})
    assert refresh_with("S2") == 401 and refresh_with(new["client_secret"]) == 200
    for body in (
        {"client_id": "nope", "add": "x"},
        {"client_id": e.client_id},
        {"client_id": e.client_id, "revoke": "S2"},  # no longer held
    ):
        with pytest.raises(httpx2.HTTPStatusError):
            e.control("POST", "client-secrets", body)
