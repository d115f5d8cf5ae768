"""The library: TokenManager, WebexClient retries and WebexAuth, against the emulator."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import Emulator, Wx, store_at
from wxtoken import TokenManager, WebexAuth
from wxtoken.client import RetryPolicy, WebexClient
from wxtoken.errors import (
    InvalidGrant,
    LoginRequired,
    MalformedResponse,
    StorageError,
    WebexUnavailable,
)
from wxtoken.grants import ClientCredentials, RefreshGrant
from wxtoken.reasons import Forced


def manager(wx: Wx, **kw: Any) -> TokenManager:
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    return TokenManager("rec", store=store, **kw)


def setup(wx: Wx, emu: Emulator) -> TokenManager:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    return manager(wx)


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
    for name in wxtoken.__all__:
        assert getattr(wxtoken, name) is not None
    with pytest.raises(AttributeError):
        wxtoken.nope  # noqa: B018
    assert Path(wxtoken.__file__).with_name("py.typed").exists()


def test_cached_path_no_network(wx: Wx, emu: Emulator) -> None:
    tm = setup(wx, emu)
    mark = emu.mark()
    tokens = {tm.access_token() for _ in range(1000)}
    assert len(tokens) == 1 and emu.ledger(mark) == []
    assert "AT" not in repr(tm) and tm.name in repr(tm)


def test_refresh_when_stale_with_injected_clock(wx: Wx, emu: Emulator) -> None:
    tm = setup(wx, emu)
    first = tm.access_token()
    later = [time.time() + 1209600 - 100]  # 100 s before expiry: inside the 300 s margin
    tm2 = manager(wx, clock=lambda: later[0])
    emu.advance(1209600 - 100)
    mark = emu.mark()
    second = tm2.access_token()
    assert second != first and len(emu.refreshes(mark)) == 1
    assert tm2.access_token() == second  # cached now


def test_rotation_is_stored_before_use_and_reported(wx: Wx, emulator_factory: Any) -> None:
    emu = emulator_factory("--rotate", "always")
    tm = setup(wx, emu)
    tm.export("json")
    result = tm.refresh(Forced())
    assert result.rotated and result.last_export and result.last_export["format"] == "json"
    # The new refresh token is what the store holds: a second manager refreshes with it.
    assert manager(wx).refresh(Forced()).refreshed
    kinds = [e.kind for e in tm.store.events("rec", ("rotation_seen",))]
    assert kinds == ["rotation_seen", "rotation_seen"]


@pytest.mark.parametrize(
    ("mode", "recovers"),
    [("never", True), ("grace:60", True), ("always", False), ("reuse-kills-family", False)],
)
def test_lost_response_after_commit(
    wx: Wx, emulator_factory: Any, mode: str, recovers: bool
) -> None:
    """NL-1: Webex commits the refresh and the answer is lost. We retry once with the old token;
    where the mode allows, that recovers; otherwise the profile is marked login_required and
    the stored record is kept, never deleted."""
    emu = emulator_factory("--rotate", mode)
    tm = setup(wx, emu)
    before = tm.store.token_record("rec")
    emu.fault("drop_after_commit")
    mark = emu.mark()
    if recovers:
        assert tm.refresh(Forced()).refreshed
        assert tm.store.token_record("rec").status == "ok"  # type: ignore[union-attr]
    else:
        with pytest.raises(LoginRequired):
            tm.refresh(Forced())
        rec = tm.store.token_record("rec")
        assert rec is not None and rec.status == "login_required"
        assert rec.refresh_fp == before.refresh_fp  # type: ignore[union-attr]
    posts = [e for e in emu.ledger(mark) if e.get("grant_type") == "refresh_token"]
    assert len(posts) <= 2, "the lost attempt plus exactly one retry"


def test_retry_honours_retry_after_and_budget(wx: Wx, emu: Emulator) -> None:
    setup(wx, emu)
    sleeps: list[float] = []
    client = WebexClient(
        emu.base_url, retry=RetryPolicy(attempts=4, budget=30), sleep=sleeps.append
    )
    tm2 = manager(wx, client=client)
    emu.fault("status", status=429, retry_after="7", count=2)
    assert tm2.refresh(Forced()).refreshed
    assert len(sleeps) == 2 and all(s >= 7 for s in sleeps)
    # Beyond the budget: fail at once with exit-5 error naming when to retry.
    emu.fault("status", status=429, retry_after="120", count=5)
    client = WebexClient(emu.base_url, sleep=sleeps.append)
    with pytest.raises(WebexUnavailable, match="after 120 s") as info:
        manager(wx, client=client).refresh(Forced())
    assert info.value.exit_code == 5
    emu.control("DELETE", "faults")


def test_5xx_backoff_is_capped_and_bounded(wx: Wx, emu: Emulator) -> None:
    tm = setup(wx, emu)
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=4, budget=30, base=0.5, cap=8)
    client = WebexClient(emu.base_url, retry=policy, sleep=sleeps.append)
    emu.fault("status", status=503, count=10)
    mark = emu.mark()
    with pytest.raises(WebexUnavailable):
        manager(wx, client=client).refresh(Forced())
    posts = [e for e in emu.ledger(mark) if e["endpoint"] == "access_token"]
    assert len(posts) == 4 and len(sleeps) == 3
    assert all(0 <= s <= min(8, 0.5 * 2**i) for i, s in enumerate(sleeps))
    rec = tm.store.token_record("rec")
    assert rec is not None and rec.failures == 1 and rec.status == "ok"


def test_code_exchange_is_never_retried(wx: Wx, emu: Emulator) -> None:
    """CX-1: the code POST reaches Webex and the answer never comes: exactly one POST."""
    wx.add_profile(emu)
    tm = manager(wx)
    emu.fault("drop_after_commit")
    client = WebexClient(emu.base_url, sleep=lambda s: None)
    tm2 = manager(wx, client=client)
    mark = emu.mark()
    with pytest.raises(WebexUnavailable):
        tm2.exchange_code("CODE-CANARY", code_verifier=None, via="exchange")
    posts = [e for e in emu.ledger(mark) if e.get("grant_type") == "authorization_code"]
    assert len(posts) == 1
    assert tm.store.token_record("rec") is None


def test_deadline_beats_a_trickling_server(wx: Wx, emu: Emulator) -> None:
    """HT-4b: one byte every 0.3 s never trips a 1 s read timeout; the 2 s deadline does."""
    setup(wx, emu)
    emu.fault("trickle", delay=0.3, count=1)
    client = WebexClient(emu.base_url, read_timeout=1, deadline=2, retry=RetryPolicy(attempts=1))
    started = time.monotonic()
    with pytest.raises(WebexUnavailable, match="took over 2 s"):
        client.exchange(RefreshGrant("x"), ClientCredentials(emu.client_id, emu.client_secret))
    assert time.monotonic() - started < 6


def test_read_timeout(emu: Emulator) -> None:
    emu.fault("delay", endpoint="people_me", delay=3)
    client = WebexClient(emu.base_url, read_timeout=0.5, retry=RetryPolicy(attempts=1))
    with pytest.raises(WebexUnavailable, match="in time"):
        client.people_me("x")
    emu.control("DELETE", "faults")


def test_body_cap(emu: Emulator) -> None:
    emu.fault("huge")
    client = WebexClient(emu.base_url, retry=RetryPolicy(attempts=1))
    with pytest.raises(MalformedResponse, match="too large"):
        client.exchange(RefreshGrant("x"), ClientCredentials("C", "S"))


def test_webexauth_refreshes_once_on_401(wx: Wx, emu: Emulator) -> None:
    tm = setup(wx, emu)
    token = tm.access_token()
    emu.control("POST", "revoke", {"token": token})  # revoke only the access token
    mark = emu.mark()
    with httpx2.Client(auth=WebexAuth(tm), trust_env=False) as http:
        r = http.get(f"{emu.base_url}/v1/people/me")
    assert r.status_code == 200
    assert len(emu.refreshes(mark)) == 1
    # A revoked grant: one refresh attempt, then the caller sees the error; no loop.
    rt = tm.export("json").refresh_token
    emu.control("POST", "revoke", {"token": rt})
    mark = emu.mark()
    with httpx2.Client(auth=WebexAuth(tm), trust_env=False) as http, pytest.raises(InvalidGrant):
        http.get(f"{emu.base_url}/v1/people/me")
    assert len(emu.refreshes(mark)) == 1


def test_200_threads_one_refresh(wx: Wx, emu: Emulator) -> None:
    """CC-8: 200 threads in one process ask at once for a token that has just expired."""
    import hashlib

    emu.policy(access_ttl=2)
    setup(wx, emu)
    time.sleep(2.2)  # expired now
    emu.policy(access_ttl=3600)
    tm = manager(wx)
    mark = emu.mark()
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
    assert len(emu.refreshes(mark)) == 1


def test_status_method(wx: Wx, emu: Emulator) -> None:
    tm = setup(wx, emu)
    st = tm.status()
    assert st.state == "ok" and st.org_id == emu.info["org_id"]
    assert tm.status(warn_days=100).state == "warning"
    assert st.as_json()["scopes"] == list(st.scopes)


def test_a_wrong_stated_expiry_does_not_lock_out_a_working_grant(wx: Wx, emu: Emulator) -> None:
    """Webex said the refresh token lives one second (or the clock says it is past): wxtoken
    still presents it, and Webex's answer decides; it is not marked login_required locally."""
    tm = setup(wx, emu)
    loaded = tm.store.load_token("rec")
    assert loaded is not None
    _, token = loaded
    short = replace(token, refresh_expires_at=time.time() - 10)
    tm.adopt(short, identify=False)
    mark = emu.mark()
    result = manager(wx).refresh()
    assert result.refreshed and len(emu.refreshes(mark)) == 1
    rec = tm.store.token_record("rec")
    assert rec is not None and rec.status == "ok"


def test_tokens_webex_issued_but_could_not_be_stored_are_explained(wx: Wx, emu: Emulator) -> None:
    """The store turns read-only between the preflight check and the write: the message says
    Webex issued tokens that were not kept (never "nothing was changed"), exit 6."""
    tm = setup(wx, emu)
    records = tm.store.records  # type: ignore[attr-defined]
    tm.token()  # opens this thread's connection
    records._conn().execute("PRAGMA query_only = ON")
    mark = emu.mark()
    with pytest.raises(StorageError) as info:
        tm.refresh()
    assert len(emu.refreshes(mark)) == 1, "Webex was asked: the write failed afterwards"
    text = info.value.one_line()
    assert "Webex issued new tokens" in text and "nothing was changed" not in text
    assert "wxtoken refresh -p rec" in text and info.value.exit_code == 6
