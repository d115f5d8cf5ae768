"""The library: TokenManager, WebexClient retries and WebexAuth, against the emulator in process.

The emulator is served through its httpx2 transport on a ManualClock that the manager shares,
so time moves when a test says so. What needs a real connection (deadlines against a trickling
server, read timeouts) is in tests/test_client_wire.py.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import store_at
from tests.emulator_inproc import InProc, inproc_fixture
from wxtoken import TokenManager, WebexAuth
from wxtoken.client import RetryPolicy, WebexClient
from wxtoken.emulator import EmulatorTransport
from wxtoken.errors import (
    InvalidGrant,
    LoginRequired,
    MalformedResponse,
    StorageError,
    WebexUnavailable,
)
from wxtoken.grants import ClientCredentials, RefreshGrant
from wxtoken.profile import SCOPE_PRESETS, Profile
from wxtoken.reasons import Forced
from wxtoken.store.sealed import SealedStore

SCOPES = SCOPE_PRESETS["verint-calling"]


@dataclass
class Lib:
    """A store with profile `rec` for the in-process emulator `e`, and managers on it."""

    e: InProc
    home: Path
    env: dict[str, str]

    def store(self) -> SealedStore:
        return store_at(self.home, self.env, clock=self.e.clock)

    def transport(self) -> EmulatorTransport:
        return EmulatorTransport(self.e.emu, sleep=lambda s: None)

    def manager(self, **kw: Any) -> TokenManager:
        kw.setdefault("transport", self.transport())
        kw.setdefault("clock", self.e.clock)
        return TokenManager("rec", store=self.store(), **kw)

    def client(self, **kw: Any) -> WebexClient:
        kw.setdefault("clock", self.e.clock)
        return WebexClient(self.e.base_url, transport=self.transport(), **kw)

    def sign_in(self) -> TokenManager:
        code = self.e.emu.authorization_code(self.e.client_id, self.e.redirect_uri, list(SCOPES))
        tm = self.manager()
        tm.exchange_code(code, code_verifier=None, via="exchange")
        return tm


def make_lib(tmp_path: Path, **opts: Any) -> Iterator[Lib]:
    for e in inproc_fixture(**opts):
        lib = Lib(e, tmp_path / "home", {"WXTOKEN_KEY_FILE": str(tmp_path / "key")})
        profile = Profile("rec", e.client_id, e.redirect_uri, SCOPES, e.base_url)
        lib.store().save_profile(profile, e.client_secret, replace=False)
        yield lib


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Lib]:
    yield from make_lib(tmp_path)


def test_public_surface() -> None:
    import wxtoken

    assert set(wxtoken.__all__) >= {
        "TokenManager",
        "WebexAuth",
        "Profile",
        "WxtokenError",
        "LoginRequired",
        "WebexUnavailable",
        "Token",
    }


def test_cached_path_no_network(lib: Lib) -> None:
    tm = lib.sign_in()
    mark = lib.e.mark()
    tokens = {tm.access_token() for _ in range(1000)}
    assert len(tokens) == 1 and lib.e.ledger(mark) == []
    assert "AT" not in repr(tm) and tm.name in repr(tm)


def test_refresh_when_stale_with_injected_clock(lib: Lib) -> None:
    tm = lib.sign_in()
    first = tm.access_token()
    lib.e.advance(1209600 - 100)  # 100 s before expiry: inside the 300 s margin
    mark = lib.e.mark()
    second = tm.access_token()
    assert second != first and len(lib.e.refreshes(mark)) == 1
    assert tm.access_token() == second  # cached now


def test_rotation_is_stored_before_use_and_reported(tmp_path: Path) -> None:
    for lib in make_lib(tmp_path, rotate="always"):
        tm = lib.sign_in()
        tm.export("json")
        result = tm.refresh(Forced())
        assert result.rotated and result.last_export and result.last_export["format"] == "json"
        # The new refresh token is what the store holds: a second manager refreshes with it.
        assert lib.manager().refresh(Forced()).refreshed
        kinds = [e.kind for e in tm.store.events("rec", ("rotation_seen",))]
        assert kinds == ["rotation_seen", "rotation_seen"]


@pytest.mark.parametrize(
    ("mode", "recovers"),
    [("never", True), ("grace:60", True), ("always", False), ("reuse-kills-family", False)],
)
def test_lost_response_after_commit(tmp_path: Path, mode: str, recovers: bool) -> None:
    """Webex commits the refresh and the answer is lost. We retry once with the old token;
    where the mode allows, that recovers; otherwise the profile is marked login_required and
    the stored record is kept, never deleted."""
    for lib in make_lib(tmp_path, rotate=mode):
        tm = lib.sign_in()
        before = tm.store.token_record("rec")
        assert before is not None
        lib.e.fault("drop_after_commit")
        mark = lib.e.mark()
        if recovers:
            assert tm.refresh(Forced()).refreshed
            assert tm.store.token_record("rec").status == "ok"  # type: ignore[union-attr]
        else:
            with pytest.raises(LoginRequired):
                tm.refresh(Forced())
            rec = tm.store.token_record("rec")
            assert rec is not None and rec.status == "login_required"
            assert rec.refresh_fp == before.refresh_fp
        posts = [e for e in lib.e.ledger(mark) if e.get("grant_type") == "refresh_token"]
        assert len(posts) <= 2, "the lost attempt plus exactly one retry"


def test_retry_honours_retry_after_and_budget(lib: Lib) -> None:
    lib.sign_in()
    sleeps: list[float] = []
    client = lib.client(retry=RetryPolicy(attempts=4, budget=30), sleep=sleeps.append)
    lib.e.fault("status", status=429, retry_after="7", count=2)
    assert lib.manager(client=client).refresh(Forced()).refreshed
    assert len(sleeps) == 2 and all(s >= 7 for s in sleeps)
    # Beyond the budget: fail at once with an exit-5 error naming when to retry.
    lib.e.fault("status", status=429, retry_after="120", count=5)
    client = lib.client(sleep=sleeps.append)
    with pytest.raises(WebexUnavailable, match="after 120 s") as info:
        lib.manager(client=client).refresh(Forced())
    assert info.value.exit_code == 5


def test_5xx_backoff_is_capped_and_bounded(lib: Lib) -> None:
    tm = lib.sign_in()
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=4, budget=30, base=0.5, cap=8)
    client = lib.client(retry=policy, sleep=sleeps.append)
    lib.e.fault("status", status=503, count=10)
    mark = lib.e.mark()
    with pytest.raises(WebexUnavailable):
        lib.manager(client=client).refresh(Forced())
    posts = [e for e in lib.e.ledger(mark) if e["endpoint"] == "access_token"]
    assert len(posts) == 4 and len(sleeps) == 3
    assert all(0 <= s <= min(8, 0.5 * 2**i) for i, s in enumerate(sleeps))
    rec = tm.store.token_record("rec")
    assert rec is not None and rec.failures == 1 and rec.status == "ok"


def test_code_exchange_is_never_retried(lib: Lib) -> None:
    """The code POST reaches Webex and the answer never comes: exactly one POST."""
    lib.e.fault("drop_after_commit")
    tm = lib.manager(client=lib.client(sleep=lambda s: None))
    mark = lib.e.mark()
    with pytest.raises(WebexUnavailable):
        tm.exchange_code("CODE-CANARY", code_verifier=None, via="exchange")
    posts = [e for e in lib.e.ledger(mark) if e.get("grant_type") == "authorization_code"]
    assert len(posts) == 1
    assert tm.store.token_record("rec") is None


def test_body_cap(lib: Lib) -> None:
    lib.e.fault("huge")
    client = lib.client(retry=RetryPolicy(attempts=1))
    with pytest.raises(MalformedResponse, match="too large"):
        client.exchange(RefreshGrant("x"), ClientCredentials("C1", "S"))


def test_webexauth_refreshes_once_on_401(lib: Lib) -> None:
    tm = lib.sign_in()
    token = tm.access_token()
    lib.e.control("POST", "revoke", {"token": token})  # revoke only the access token
    mark = lib.e.mark()
    with httpx2.Client(auth=WebexAuth(tm), transport=lib.transport()) as http:
        r = http.get(f"{lib.e.base_url}/v1/people/me")
    assert r.status_code == 200
    assert len(lib.e.refreshes(mark)) == 1
    # A revoked grant: one refresh attempt, then the caller sees the error; no loop.
    lib.e.control("POST", "revoke", {"token": tm.export("json").refresh_token})
    mark = lib.e.mark()
    with (
        httpx2.Client(auth=WebexAuth(tm), transport=lib.transport()) as http,
        pytest.raises(InvalidGrant),
    ):
        http.get(f"{lib.e.base_url}/v1/people/me")
    assert len(lib.e.refreshes(mark)) == 1


def test_200_threads_one_refresh(lib: Lib) -> None:
    """200 threads in one process ask at once for a token that has just expired."""
    lib.e.policy(access_ttl=2)
    lib.sign_in()
    lib.e.advance(2.2)  # expired now
    lib.e.policy(access_ttl=3600)
    tm = lib.manager()
    mark = lib.e.mark()
    barrier = threading.Barrier(200)
    results: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            barrier.wait()
            token = tm.access_token(min_valid=60)
            results.append(hashlib.sha256(token.encode()).hexdigest()[:12])  # never the token
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 200 and len(set(results)) == 1
    assert len(lib.e.refreshes(mark)) == 1


def test_status_method(lib: Lib) -> None:
    tm = lib.sign_in()
    st = tm.status()
    assert st.state == "ok" and st.org_id == lib.e.info["org_id"]
    assert tm.status(warn_days=100).state == "warning"
    assert st.as_json()["scopes"] == list(st.scopes)


def test_a_wrong_stated_expiry_does_not_lock_out_a_working_grant(lib: Lib) -> None:
    """Webex said the refresh token lives one second (or the clock says it is past): wxtoken
    still presents it, and Webex's answer decides; it is not marked login_required locally."""
    tm = lib.sign_in()
    loaded = tm.store.load_token("rec")
    assert loaded is not None
    _, token = loaded
    tm.adopt(replace(token, refresh_expires_at=lib.e.clock() - 10), identify=False)
    mark = lib.e.mark()
    assert lib.manager().refresh().refreshed and len(lib.e.refreshes(mark)) == 1
    rec = tm.store.token_record("rec")
    assert rec is not None and rec.status == "ok"


def test_tokens_webex_issued_but_could_not_be_stored_are_explained(lib: Lib) -> None:
    """The store turns read-only between the preflight check and the write: the message says
    Webex issued tokens that were not kept (never "nothing was changed"), exit 6."""
    tm = lib.sign_in()
    tm.token()  # opens this thread's connection
    tm.store.records._conn().execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    mark = lib.e.mark()
    with pytest.raises(StorageError) as info:
        tm.refresh()
    assert len(lib.e.refreshes(mark)) == 1, "Webex was asked: the write failed afterwards"
    text = info.value.one_line()
    assert "Webex issued new tokens" in text and "nothing was changed" not in text
    assert "wxtoken refresh -p rec" in text and info.value.exit_code == 6


def test_a_refresh_for_another_org_keeps_the_grant_and_is_recorded(lib: Lib) -> None:
    tm = lib.sign_in()
    before = tm.store.token_record("rec")
    assert before is not None
    user = lib.e.emu.user_by_email("admin@example.com")
    assert user is not None
    user.org_uuid = "00000000-0000-4000-8000-000000000001"  # the admin's org changed at Webex
    from wxtoken.errors import OrgMismatch

    with pytest.raises(OrgMismatch) as info:
        tm.refresh()
    assert before.identity.org_id is not None and before.identity.org_id in info.value.message
    after = tm.store.token_record("rec")
    assert after is not None and after.generation == before.generation
    assert after.failures == 1 and after.refresh_fp == before.refresh_fp
    assert [e.kind for e in tm.store.events("rec", ("org_mismatch",))] == ["org_mismatch"]
