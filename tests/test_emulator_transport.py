"""EmulatorTransport on its own terms: what it does where the server's connection would act
(delay, drop, trickle), with an injected `sleep` so nothing really waits; that it ignores the
URL's host and port; and that one emulator serves many threads."""

from __future__ import annotations

import email.utils
import threading
from typing import Any

import httpx2
import pytest

from tests.emulator_inproc import START, InProc
from tests.emulator_requests import login, refresh
from wxtoken.emulator import EmulatorTransport

pytest_plugins = ["tests.emulator_fixtures"]  # the `e` and `http` fixtures


class Sleeps:
    """An injected sleep: records each wait and moves the emulator's clock by it."""

    def __init__(self, e: InProc) -> None:
        self.e = e
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.e.clock.advance(seconds)


def client(e: InProc, sleeps: Sleeps, **kw: Any) -> httpx2.Client:
    transport = EmulatorTransport(e.emu, control=True, sleep=sleeps)
    return httpx2.Client(transport=transport, base_url=e.base_url, **kw)


def test_delay_waits_with_the_injected_sleep(e: InProc) -> None:
    sleeps = Sleeps(e)
    http = client(e, sleeps, timeout=10)
    t = login(e, http)
    e.fault("delay", delay=2.5)
    e.fault("delay", delay=1.5)
    r = refresh(e, http, t["refresh_token"])
    assert r.status_code == 200 and sleeps.waits == [2.5, 1.5]
    # The rules ran after the wait: the new access token's life starts 4 s later.
    assert r.json()["expires_in"] == 1209599
    assert e.emu.access[r.json()["access_token"]].created == START + 4


def test_delay_beyond_the_read_timeout(e: InProc) -> None:
    sleeps = Sleeps(e)
    http = client(e, sleeps, timeout=httpx2.Timeout(10, read=3))
    t = login(e, http)
    e.policy(rotate="always")
    e.fault("delay", delay=30)
    mark = e.mark()
    with pytest.raises(httpx2.ReadTimeout):
        refresh(e, http, t["refresh_token"])
    assert sleeps.waits == [3]
    # As on the server, the request was handled anyway: the answer with the new token is lost.
    assert [x["status"] for x in e.refreshes(mark)] == [200]
    assert refresh(e, http, t["refresh_token"]).status_code == 400


def test_drop_before_the_rules(e: InProc) -> None:
    http = e.client(timeout=10)
    t = login(e, http)
    e.policy(rotate="always")
    e.fault("drop")
    mark = e.mark()
    with pytest.raises(httpx2.RemoteProtocolError):
        refresh(e, http, t["refresh_token"])
    assert [x.get("fault") for x in e.ledger(mark)] == ["drop"]
    assert refresh(e, http, t["refresh_token"]).status_code == 200  # never reached the rules


def test_drop_after_commit_streams_then_breaks(e: InProc) -> None:
    http = e.client(timeout=10)
    t = login(e, http)
    e.policy(rotate="always")
    e.fault("drop_after_commit")
    data = {"grant_type": "refresh_token", "refresh_token": t["refresh_token"]}
    data.update(client_id=e.client_id, client_secret=e.client_secret)
    with http.stream("POST", "/v1/access_token", data=data) as r:
        assert r.status_code == 200 and r.headers["content-length"] == "512"
        with pytest.raises(httpx2.RemoteProtocolError):
            r.read()
    committed = e.refreshes()
    assert committed and committed[-1]["status"] == 200 and committed[-1]["rotated"]
    assert refresh(e, http, t["refresh_token"]).status_code == 400


def test_trickle_yields_a_space_per_delay(e: InProc) -> None:
    sleeps = Sleeps(e)
    http = client(e, sleeps, timeout=10)
    e.fault("trickle", delay=0.5)
    with http.stream("POST", "/v1/access_token", data={}) as r:
        assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
        chunks = r.iter_raw()
        assert [next(chunks) for _ in range(4)] == [b" "] * 4
    assert sleeps.waits == [0.5] * 3


def test_trickle_slower_than_the_read_timeout(e: InProc) -> None:
    sleeps = Sleeps(e)
    http = client(e, sleeps, timeout=httpx2.Timeout(10, read=2))
    e.fault("trickle", delay=5)
    with (
        pytest.raises(httpx2.ReadTimeout),
        http.stream("POST", "/v1/access_token", data={}) as r,
    ):
        r.read()
    assert sleeps.waits == [2]


def test_host_and_port_are_ignored_and_echoed(e: InProc) -> None:
    http = e.client()
    for base in ("http://127.0.0.1:1", "http://[::1]:65000", "https://127.0.0.1"):
        doc = http.get(f"{base}/v1/.well-known/openid-configuration").json()
        assert doc["token_endpoint"] == f"{base}/v1/access_token"


def test_date_header_follows_the_emulator_clock(e: InProc) -> None:
    http = e.client()
    e.advance(86400)
    r = http.get("/v1/people/me")
    assert r.headers["date"] == email.utils.formatdate(START + 86400, usegmt=True)


def test_control_api_only_when_asked(e: InProc) -> None:
    with httpx2.Client(transport=EmulatorTransport(e.emu), base_url=e.base_url) as plain:
        assert plain.post("/_emulator/reset").status_code == 404
        assert plain.get("/_emulator/ledger").status_code == 404
    assert e.client().get("/_emulator/ledger").status_code == 200


def test_first_header_value_wins(e: InProc) -> None:
    http = e.client()
    headers = [("TrackingID", "FIRST"), ("TrackingID", "SECOND")]
    assert http.get("/v1/people/me", headers=headers).headers["trackingid"] == "FIRST"


def test_one_emulator_serves_many_threads(e: InProc) -> None:
    http = e.client(timeout=10)
    tokens = [login(e, http)["refresh_token"] for _ in range(8)]
    e.policy(rotate="always")
    mark = e.mark()
    failures: list[str] = []

    def chain(rt: str) -> None:
        with e.client(timeout=10) as own:
            for _ in range(40):
                r = refresh(e, own, rt)
                if r.status_code != 200:
                    failures.append(r.text)
                    return
                rt = r.json()["refresh_token"]

    threads = [threading.Thread(target=chain, args=(rt,)) for rt in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    entries = e.ledger(mark)
    assert len(entries) == 8 * 40 and all(x["status"] == 200 for x in entries)
    assert [x["seq"] for x in entries] == list(range(mark + 1, mark + 1 + 8 * 40))
