"""The keeper asks Webex on its own schedule whether each grant is alive, and alerts on what it
learns: a dead grant with its cause, a stale recorder copy, a fixed expiry counting down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Emulator, Wx, assert_no_secret
from tests.test_keeper import (
    Smtp,
    VClock,
    Webhook,
    every_channel,
    keeper_for,
    kinds,
    run_for,
    smtp,
    webhook_receiver,
)
from wxtoken import causes

__all__ = ["smtp"]  # the SMTP receiver fixture, shared with the keeper's channel tests


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_receiver() as hook:
        yield hook


def test_a_revoked_grant_is_found_within_one_probe_interval_and_alerted_once_per_channel(
    wx: Wx,
    emu: Emulator,
    webhook: Webhook,
    smtp: Smtp,
    monkeypatch: pytest.MonkeyPatch,
    figure: Any,
) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    rt = wx("export", check=0).stdout.strip()
    monkeypatch.setenv("WXTOKEN_TEST_BOT", emu.info["bot_token"])
    alerts = every_channel(emu, webhook, smtp)
    clock = VClock(emu)
    keeper, log = keeper_for(wx, emu, clock, alerts, probe_interval=5)
    keeper.alerts.start()
    mark = emu.mark()
    run_for(keeper, clock, 3)
    emu.control("POST", "revoke", {"token": rt})  # revoked at Webex, behind wxtoken's back
    revoked_at, found = clock(), None
    for _ in range(5):  # one probe interval, a second at a time
        run_for(keeper, clock, 1)
        if webhook.received:
            found = clock() - revoked_at
            break
    assert found is not None, "the keeper did not find the revocation within one probe_interval"
    figure(f"keeper found a revoked grant {found:.0f} s after it (probe_interval 5 s), alerted")
    run_for(keeper, clock, 20)  # several probe intervals more: still one alert per channel
    keeper.alerts.stop()
    keeper.close()
    assert [e for e in emu.ledger(mark) if e.get("grant_type")] == [], "probes never refresh"
    proc = wx("status", "--json")
    assert proc.returncode == 4
    row = json.loads(proc.stdout)[0]
    assert row["cause"] == "revoked" and row["probe"]["verdict"] == "dead"
    assert 'wxtoken_probe_verdict{profile="rec",verdict="dead"} 1.0' in keeper.metrics().decode()
    assert kinds(webhook.received) == ["login_required"]
    assert "Webex no longer accepts the grant" in webhook.received[0]["text"]
    assert webhook.received[0]["fix"].startswith("wxtoken login -p rec")
    messages = emu.control("GET", "messages")["items"]
    assert [m["roomId"] for m in messages] == ["ROOM-ALERTS"]
    assert "Webex no longer accepts the grant" in messages[0]["markdown"]
    assert len(smtp.messages) == 1
    assert "Subject: wxtoken: login required for rec" in smtp.messages[0]
    assert "wxtoken login -p rec" in smtp.messages[0]
    sent = json.dumps(webhook.received) + json.dumps(messages) + "".join(smtp.messages)
    assert_no_secret([sent, log.getvalue()], [rt, emu.client_secret])
    assert "Traceback" not in log.getvalue()


def test_a_probe_does_not_move_the_refresh_schedule(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    before = json.loads(wx("status", "--json", check=0).stdout)[0]
    clock = VClock(emu)
    keeper, _ = keeper_for(wx, emu, clock, {}, probe_interval=2, min_interval="1d")
    keeper.alerts.start()
    run_for(keeper, clock, 7)
    keeper.alerts.stop()
    keeper.close()
    after = json.loads(wx("status", "--json", check=0).stdout)[0]
    assert after["probe"]["verdict"] == "alive"
    assert after["access_expires_at"] == before["access_expires_at"], "no refresh happened"
    probes = [e for e in emu.ledger() if e["endpoint"] == "token_expiry"]
    assert 2 <= len(probes) <= 4, probes  # every ~2 s over 7 s, no more


def test_a_stale_recorder_copy_is_alerted_once(
    wx: Wx, emulator_factory: Any, webhook: Webhook
) -> None:
    emu = emulator_factory("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    wx("export", check=0)
    wx("refresh", "--force", check=0)  # a script's refresh rotated it: the keeper did not
    alerts = {"webhook": [{"url": webhook.url}]}
    for _ in range(2):  # a restarted keeper does not repeat it
        clock = VClock(emu)
        keeper, _ = keeper_for(wx, emu, clock, alerts, probe_interval=0, min_interval="1d")
        keeper.alerts.start()
        run_for(keeper, clock, 2)
        keeper.alerts.stop()
        keeper.close()
    assert kinds(webhook.received) == ["copy_stale"]
    assert "stale since" in webhook.received[0]["text"]
    assert webhook.received[0]["fix"] == "wxtoken export -p rec"


def test_a_fixed_expiry_alert_gives_the_date_and_says_refreshing_will_not_help(
    wx: Wx, emulator_factory: Any, webhook: Webhook
) -> None:
    emu = emulator_factory(
        "--refresh-expiry", "fixed", "--access-ttl", "86400", "--refresh-ttl", str(10 * 86400)
    )
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    clock = VClock(emu)
    alerts = {"webhook": [{"url": webhook.url}], "thresholds": ["5d"]}
    keeper, _ = keeper_for(wx, emu, clock, alerts, probe_interval=0)
    keeper.alerts.start()
    run_for(keeper, clock, 6 * 86400, step=3600)
    keeper.alerts.stop()
    keeper.close()
    row = json.loads(wx("status", "--json").stdout)[0]
    assert row["expiry_trend"] == "fixed"
    expiry = [h for h in webhook.received if h["kind"] == "expiry"]
    assert len(expiry) == 1, kinds(webhook.received)
    assert "refreshing does not extend it" in expiry[0]["text"]
    assert row["refresh_expires_at"] in expiry[0]["text"]


def test_a_token_limit_is_alerted_at_once_with_its_fix_then_recovery(
    wx: Wx, emulator_factory: Any, webhook: Webhook
) -> None:
    """Retrying does not end a token limit (an admin must revoke grants), so the keeper alerts at
    the first refused refresh instead of after its usual run of failures."""
    emu = emulator_factory("--access-ttl", "600")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    emu.policy(token_limit=1)  # the access token from the sign-in counts until it expires
    clock = VClock(emu)
    keeper, log = keeper_for(wx, emu, clock, {"webhook": [{"url": webhook.url}]})
    keeper.alerts.start()
    run_for(keeper, clock, 500, step=5)  # the keeper refreshes well before the 600 s are up
    assert kinds(webhook.received) == ["failures"]
    alert = webhook.received[0]
    assert "too many active tokens" in alert["text"] and "1 refresh attempts" in alert["text"]
    assert alert["fix"].endswith("then try again: wxtoken refresh -p rec")
    assert wx("status").returncode == 3
    emu.policy(token_limit=None)  # the admin revoked unused grants
    run_for(keeper, clock, 60, step=5)
    keeper.alerts.stop()
    keeper.close()
    assert kinds(webhook.received) == ["failures", "recovery"]
    assert wx("status").returncode == 0
    assert "Traceback" not in log.getvalue()


ADMIN = "admin@example.com"
OTHER_ORG = "00000000-0000-4000-8000-0000000000aa"


@pytest.mark.parametrize(
    ("cause", "produce", "kind", "named"),
    [
        ("password_changed", ("users", {"password_changed": True}), "login_required", "revoked"),
        ("deactivated", ("users", {"active": False}), "login_required", "revoked"),
        ("blocked", ("block", {}), "login_required", "revoked"),
        ("admin_role_lost", ("users", {"roles": []}), "degraded", "admin_role_lost"),
        ("org_changed", ("users", {"org_id": OTHER_ORG}), "degraded", "org_changed"),
        ("forbidden", ("fault", {"kind": "status", "status": 403, "count": 99}), "degraded", None),
    ],
)
def test_the_keeper_finds_each_cause_by_probing_and_alerts_it_once_with_its_fix(
    wx: Wx,
    emu: Emulator,
    webhook: Webhook,
    cause: str,
    produce: tuple[str, dict[str, Any]],
    kind: str,
    named: str | None,
) -> None:
    """What happened at Webex (`cause`, as the emulator's ledger knows it) against what the
    keeper can name from Webex's answer (`named`), alerted once with that cause's own fix."""
    named = named or cause
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    clock = VClock(emu)
    keeper, log = keeper_for(
        wx, emu, clock, {"webhook": [{"url": webhook.url}]}, probe_interval=5, min_interval="1d"
    )
    keeper.alerts.start()
    run_for(keeper, clock, 3)
    route, body = produce
    if route == "users":
        emu.control("POST", "users", dict(body, email=ADMIN))
    elif route == "block":
        emu.control("POST", "block", {"client_id": emu.client_id})
    else:
        emu.fault(endpoint="token_expiry", **body)
    run_for(keeper, clock, 16)  # three probe intervals: still one alert
    keeper.alerts.stop()
    keeper.close()
    assert kinds(webhook.received) == [kind], webhook.received
    text, fix = causes.describe(named, "rec") or ("", "")
    assert text in webhook.received[0]["text"] and webhook.received[0]["fix"] == fix
    row = json.loads(wx("status", "--json").stdout)[0]
    assert (row["cause"] or row["probe"]["cause"]) == named
    assert wx("status").returncode == (4 if kind == "login_required" else 3)
    if kind == "login_required":  # the emulator's ledger knows what Webex did not say
        assert cause in [e.get("cause") for e in emu.ledger()]
    assert "Traceback" not in log.getvalue()
