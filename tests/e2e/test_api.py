"""`wxtoken api` through the installed CLI against the emulator: GET, POST with fields and with
a JSON body, pagination over Link headers, one refresh after a 401, a dead grant, a foreign URL
refused, an HTTP error with its trackingId, and no token anywhere in what it shows."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Emulator, Wx, assert_no_secret

SCOPES = "spark:kms spark:people_read spark:messages_write identity:tokens_read"


@pytest.fixture
def api_ready(wx: Wx, emu: Emulator) -> tuple[Wx, Emulator]:
    wx.add_profile(emu, scopes=SCOPES)
    assert wx.login().returncode == 0
    return wx, emu


def test_get_and_post(api_ready: tuple[Wx, Emulator]) -> None:
    wx, emu = api_ready
    me = json.loads(wx("api", "/v1/people/me", check=0).stdout)
    assert me["emails"] == ["admin@example.com"]
    one = json.loads(wx("api", "v1/people", "-f", "email=user@example.com", check=0).stdout)
    assert [p["displayName"] for p in one["items"]] == ["Uma User"]
    sent = json.loads(
        wx("api", "-X", "POST", "/v1/messages", "-f", "toPersonEmail=user@example.com",
           "-f", "text=hello", check=0).stdout
    )  # fmt: skip
    assert sent["text"] == "hello"
    body = json.dumps({"toPersonEmail": "user@example.com", "markdown": "**hi**"})
    posted = wx("api", "-X", "post", "/v1/messages", "--input", "-", input=body, check=0)
    assert json.loads(posted.stdout)["markdown"] == "**hi**"
    items = emu.control("GET", "messages")["items"]
    assert [m.get("text") or m.get("markdown") for m in items] == ["hello", "**hi**"]
    absolute = wx("api", f"{emu.base_url}/v1/people/me", check=0).stdout
    assert json.loads(absolute)["emails"] == ["admin@example.com"]
    token = wx("token", check=0).stdout.strip()
    assert_no_secret(wx.outputs[:-2], [token])


def test_paginate_follows_link_headers(api_ready: tuple[Wx, Emulator]) -> None:
    wx, emu = api_ready
    mark = emu.mark()
    out = json.loads(wx("api", "/v1/people", "--paginate", "-f", "max=1", check=0).stdout)
    assert [p["emails"][0] for p in out["items"]] == ["admin@example.com", "user@example.com"]
    assert [e["status"] for e in emu.ledger(mark) if e["endpoint"] == "people"] == [200, 200]
    single = json.loads(wx("api", "/v1/people", "-f", "max=1", check=0).stdout)
    assert len(single["items"]) == 1


def test_a_401_refreshes_once_and_a_dead_grant_exits_4(api_ready: tuple[Wx, Emulator]) -> None:
    wx, emu = api_ready
    access = wx("token", check=0).stdout.strip()
    emu.control("POST", "revoke", {"token": access})  # only the access token dies
    mark = emu.mark()
    assert json.loads(wx("api", "/v1/people/me", check=0).stdout)["type"] == "person"
    seen = [(e["endpoint"], e["status"]) for e in emu.ledger(mark)]
    assert seen == [("people_me", 401), ("access_token", 200), ("people_me", 200)]
    rt = json.loads(wx("export", "--format", "json", check=0).stdout)["refresh_token"]
    emu.control("POST", "revoke", {"token": rt})  # the whole grant ends
    proc = wx("api", "/v1/people/me", check=4)
    assert "needs a new sign-in" in proc.stderr and "Traceback" not in proc.stderr


def test_refusals_and_errors(api_ready: tuple[Wx, Emulator]) -> None:
    wx, emu = api_ready
    proc = wx("api", "https://attacker.example/v1/people/me", check=2)
    assert "is not this profile's Webex" in proc.stderr
    assert emu.ledger(emu.mark()) == []
    missing = wx("api", "/v1/rooms", check=1)
    assert "Webex answered HTTP 404" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "KEY=VALUE" in wx("api", "/v1/people", "-f", "novalue", check=2).stderr
    assert "not an HTTP method" in wx("api", "-X", "BREW", "/v1/people/me", check=2).stderr
    bad = wx("api", "-X", "POST", "/v1/messages", "-f", "text=no recipient", check=1)
    assert "HTTP 400: The request could not be understood" in bad.stderr
    assert "(Webex trackingId " in bad.stderr  # for a support case
    token = wx("token", check=0).stdout.strip()
    assert_no_secret(wx.outputs[:-2], [token])
