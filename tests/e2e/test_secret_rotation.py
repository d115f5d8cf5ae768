"""Rotating an integration's client secret without a gap, through the installed CLI: a profile
holds two secrets, requests use the newest, and fall back to the older with a warning."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Emulator, Wx, assert_no_secret
from tests.test_keeper import VClock, Webhook, keeper_for, kinds, run_for, webhook_receiver
from wxtoken.emulator.model import fp


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_receiver() as hook:
        yield hook


def rotate_in(wx: Wx, emu: Emulator, new: str) -> None:
    """What the admin does: Webex accepts a new secret, and the profile is told it."""
    emu.control("POST", "client-secrets", {"client_id": emu.client_id, "add": new})
    proc = wx(
        "profile", "set", "rec", "--add-client-secret", "--client-secret-stdin",
        input=new + "\n", check=0,
    )  # fmt: skip
    assert "two client secrets" in proc.stderr


def refused_secrets(emu: Emulator, since: int) -> list[str]:
    return [e["secret_fp"] for e in emu.ledger(since) if e.get("error") == "invalid_client"]


def test_the_new_secret_is_used_and_the_old_one_can_be_dropped(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    new = secrets.token_hex(32)
    rotate_in(wx, emu, new)
    # Webex no longer takes the old one: a refresh that tried it first would be refused.
    emu.control("POST", "client-secrets", {"client_id": emu.client_id, "revoke": emu.client_secret})
    mark = emu.mark()
    proc = wx("refresh", "-p", "rec", "--force", check=0)
    assert "warning" not in proc.stderr
    assert refused_secrets(emu, mark) == [] and len(emu.refreshes(mark)) == 1
    status = wx("status", "--json", check=0)
    [row] = json.loads(status.stdout)
    assert row["client_secrets"]["held"] == 2 and row["client_secrets"]["older_used_at"] is None
    assert "two client secrets held" in wx("status").stdout + wx("status").stderr
    proc = wx("profile", "set", "rec", "--drop-old-client-secret", check=0)
    assert "older client secret is forgotten" in proc.stderr
    [row] = json.loads(wx("status", "--json", check=0).stdout)
    assert row["client_secrets"]["held"] == 1
    wx("refresh", "-p", "rec", "--force", check=0)  # the one left is the new one
    assert_no_secret(wx.outputs, [new, emu.client_secret])


def test_a_revoked_new_secret_falls_back_to_the_old_with_a_warning(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    new = secrets.token_hex(32)
    rotate_in(wx, emu, new)
    emu.control("POST", "client-secrets", {"client_id": emu.client_id, "revoke": new})
    mark = emu.mark()
    proc = wx("refresh", "-p", "rec", "--force", check=0)
    assert "Webex refused the newest client secret" in proc.stderr
    assert "wxtoken profile set rec --client-secret-stdin" in proc.stderr
    # The new secret was tried first and refused, then the old one refreshed.
    assert refused_secrets(emu, mark) == [fp(new)]
    answers = [(e["status"], e.get("error")) for e in emu.refreshes(mark)]
    assert answers == [(401, "invalid_client"), (200, None)]
    status = wx("status", check=0)
    assert "Webex refused the newest client secret" in status.stdout + status.stderr
    log = wx("log", "-p", "rec", "--json", check=0).stdout.splitlines()
    assert "client_secret_fallback" in {json.loads(line)["kind"] for line in log}
    # Both refused: one clear line naming both, exit 1, nothing lost.
    emu.control("POST", "client-secrets", {"client_id": emu.client_id, "revoke": emu.client_secret})
    proc = wx("refresh", "-p", "rec", "--force", check=1)
    assert "rejected both client secrets of 'rec'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert_no_secret(wx.outputs, [new, emu.client_secret])


def test_a_third_secret_is_refused_until_the_older_is_dropped(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    rotate_in(wx, emu, secrets.token_hex(32))
    third = secrets.token_hex(32)
    proc = wx(
        "profile", "set", "rec", "--add-client-secret", "--client-secret-stdin",
        input=third + "\n", check=2,
    )  # fmt: skip
    assert "already holds two client secrets" in proc.stderr
    assert "wxtoken profile set rec --drop-old-client-secret" in proc.stderr
    proc = wx(
        "profile", "set", "rec", "--add-client-secret", "--redirect-uri", emu.redirect_uri,
        input=third + "\n", check=2,
    )  # fmt: skip
    assert "separate commands" in proc.stderr
    assert_no_secret(wx.outputs, [third])


def test_the_keeper_alerts_once_when_only_the_older_secret_works(
    wx: Wx, emulator_factory: Any, webhook: Webhook
) -> None:
    emu = emulator_factory("--access-ttl", "60")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    new = secrets.token_hex(32)
    rotate_in(wx, emu, new)
    emu.control("POST", "client-secrets", {"client_id": emu.client_id, "revoke": new})
    clock = VClock(emu)
    keeper, log = keeper_for(wx, emu, clock, {"webhook": [{"url": webhook.url}]})
    keeper.alerts.start()
    run_for(keeper, clock, 200, step=5)  # several refreshes of a 60 s access token
    deadline = time.monotonic() + 10
    while not webhook.received and time.monotonic() < deadline:
        time.sleep(0.05)
    keeper.alerts.stop()
    keeper.close()
    assert kinds(webhook.received) == ["older_secret"]
    alert = webhook.received[0]
    assert "refused the newest client secret" in alert["text"]
    assert alert["fix"].endswith("wxtoken profile set rec --client-secret-stdin")
    assert "refused the newest client secret" in log.getvalue()
    assert len(emu.refreshes()) >= 3  # it kept refreshing on the older secret meanwhile
    assert_no_secret([log.getvalue(), json.dumps(webhook.received)], [new, emu.client_secret])
