"""A refresh that returns a token for another org: the keeper alerts once per occurrence, keeps
the stored grant and backs off.

The manager refuses such a token and records an `org_mismatch` event (detail: expected_org_id,
returned_org_id); the keeper alerts on the event. The emulator cannot move a user to another org
yet, so the rule is checked on records and events, and the keeper's wiring against the emulator
with the event written as the manager writes it and Webex failing the refreshes meanwhile.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.conftest import Emulator, Wx, assert_no_secret, store_at
from tests.test_keeper import VClock, keeper_for, kinds, run_for, webhook_receiver
from tests.test_keeper_schedule import HOME_ORG, T0, record
from wxtoken.errors import OAuthError, StorageError, WebexUnavailable
from wxtoken.keeper.metrics import failure_reason
from wxtoken.keeper.schedule import ORG_MISMATCH, org_mismatch_alerts
from wxtoken.store import Event

OTHER_ORG = str(uuid.uuid4())


def mismatch(at: float, returned: object = OTHER_ORG, event_id: int = 1) -> Event:
    detail = {"expected_org_id": HOME_ORG}
    if returned is not None:
        detail["returned_org_id"] = returned  # type: ignore[assignment]
    return Event(event_id, at, "rec", ORG_MISMATCH, detail)


def test_one_alert_per_occurrence_naming_both_orgs() -> None:
    rec = record()
    events = [mismatch(T0 + 300, event_id=2), mismatch(T0 + 60, event_id=1)]  # newest first
    (alert,) = org_mismatch_alerts("rec", rec, events, set())
    assert alert.kind == "org_mismatch" and alert.profile == "rec" and alert.org_id == HOME_ORG
    assert alert.key == f"org_mismatch:rec:3:{OTHER_ORG}"
    assert HOME_ORG in alert.text and OTHER_ORG in alert.text and "not stored" in alert.text
    assert alert.fix is not None and "wxtoken login -p rec" in alert.fix
    assert "wxtoken export -p rec" in alert.fix
    # Delivered (or queued) once: later retries meeting the same org add nothing.
    later = [mismatch(T0 + 900, event_id=3), *events]
    assert org_mismatch_alerts("rec", rec, later, {alert.key}) == []


def test_a_new_grant_or_another_org_is_a_new_occurrence() -> None:
    first = org_mismatch_alerts("rec", record(3), [mismatch(T0 + 60)], set())
    sent = {a.key for a in first}
    signed_in_again = record(4, obtained_at=T0 + 1000)
    again = org_mismatch_alerts("rec", signed_in_again, [mismatch(T0 + 1060)], sent)
    assert [a.key for a in again] == [f"org_mismatch:rec:4:{OTHER_ORG}"]
    third_org = str(uuid.uuid4())
    moved_on = org_mismatch_alerts("rec", record(3), [mismatch(T0 + 90, third_org)], sent)
    assert [a.key for a in moved_on] == [f"org_mismatch:rec:3:{third_org}"]


def test_events_of_a_replaced_grant_and_other_kinds_are_ignored() -> None:
    rec = record(5, obtained_at=T0 + 5000)
    old = mismatch(T0 + 100)  # met by the grant that sign-in replaced
    other = Event(9, T0 + 6000, "rec", "refresh_failed", {"error": "x"})
    assert org_mismatch_alerts("rec", rec, [other, old], set()) == []


def test_missing_or_hostile_detail_still_alerts_safely() -> None:
    (plain,) = org_mismatch_alerts("rec", record(), [mismatch(T0 + 1, returned=None)], set())
    assert plain.key == "org_mismatch:rec:3:unknown" and "another org" in plain.text
    forged = "evil\r\nwxtoken: all good\x1b[2J"
    (alert,) = org_mismatch_alerts("rec", record(), [mismatch(T0 + 1, returned=forged)], set())
    assert "\n" not in alert.text and "\r" not in alert.text and "\x1b" not in alert.text
    (odd,) = org_mismatch_alerts("rec", record(), [mismatch(T0 + 1, returned=42)], set())
    assert odd.key.endswith(":unknown")


def test_failure_reason_labels_an_org_mismatch_of_this_attempt() -> None:
    exc = OAuthError(f"Webex returned a token for org {OTHER_ORG}, not {HOME_ORG}")
    assert failure_reason(exc, [mismatch(T0 + 10)], started=T0 + 5) == "org_mismatch"
    assert failure_reason(exc, [mismatch(T0 + 1)], started=T0 + 5) == "error"
    assert failure_reason(WebexUnavailable("down"), [], started=T0) == "unavailable"
    assert failure_reason(StorageError("disk"), [], started=T0) == "storage"


def test_keeper_alerts_once_keeps_the_grant_and_backs_off(
    wx: Wx, emulator_factory: Any, figure: Any
) -> None:
    emu: Emulator = emulator_factory("--access-ttl", "20")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    home = Path(wx.env["WXTOKEN_HOME"])
    clock = VClock(emu)
    store = store_at(home, wx.env, clock=clock)
    before = store.token_record("rec")
    assert before is not None and before.identity.org_id is not None
    # What the manager records when a refresh answers for another org, as it refuses the token.
    store.append_event(
        "rec",
        ORG_MISMATCH,
        {"expected_org_id": before.identity.org_id, "returned_org_id": OTHER_ORG},
    )
    emu.fault("status", status=503, count=1000)  # and the refreshes keep failing meanwhile
    with webhook_receiver() as hook:
        channels = {"webhook": [{"url": hook.url}]}
        keeper, log = keeper_for(wx, emu, clock, channels, retry_base="4s", retry_cap="16s")
        keeper.alerts.start()
        mark = emu.mark()
        run_for(keeper, clock, 60)
        attempts = len([e for e in emu.ledger(mark) if e["endpoint"] == "access_token"])
        keeper.close()
        # A restarted keeper meets the same occurrence again and stays quiet about it.
        keeper, log2 = keeper_for(wx, emu, clock, channels, retry_base="4s", retry_cap="16s")
        keeper.alerts.start()
        run_for(keeper, clock, 30)
        keeper.close()
    assert kinds(hook.received).count("org_mismatch") == 1, kinds(hook.received)
    (alert,) = [h for h in hook.received if h["kind"] == "org_mismatch"]
    assert OTHER_ORG in alert["text"] and before.identity.org_id in alert["text"]
    # Backed off: without it, each of ~45 due passes would send two requests.
    assert 2 <= attempts <= 24, attempts
    after = store.token_record("rec")
    assert after is not None
    assert (after.generation, after.refresh_fp, after.status) == (
        before.generation,
        before.refresh_fp,
        "ok",
    )
    loaded = store.load_token("rec")
    assert loaded is not None and loaded[1].refresh_token is not None
    assert_no_secret(
        [log.getvalue(), log2.getvalue(), str(hook.received)],
        [loaded[1].refresh_token, loaded[1].access_token, emu.client_secret],
    )
    figure(f"org mismatch under 503s, 60 virtual s: {attempts} refresh attempts, 1 alert")
