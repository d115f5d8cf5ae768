"""The keeper's pure schedule on a fixed clock: when it wakes, when a profile is due."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import replace

import pytest

from wxtoken.identity import Identity
from wxtoken.keeper.config import EXAMPLE, Schedule, parse_config
from wxtoken.keeper.schedule import (
    MIN_WAKE,
    Backoff,
    acts_at,
    failures_alert,
    next_wake,
    refresh_due_at,
)
from wxtoken.store import TokenRecord

DEFAULT = parse_config({}).schedule
HOME_ORG = str(uuid.uuid4())
T0 = 1_750_000_000.0


def record(generation: int = 3, obtained_at: float = T0) -> TokenRecord:
    return TokenRecord(
        profile="rec",
        access_expires_at=obtained_at + 14 * 86400,
        refresh_expires_at=obtained_at + 90 * 86400,
        scopes=("spark:kms",),
        obtained_at=obtained_at,
        identity=Identity(org_id=HOME_ORG, email="admin@example.com"),
        generation=generation,
        status="ok",
        status_reason=None,
        access_fp="fp-a",
        refresh_fp="fp-r",
    )


def short_lived(seconds: float, obtained_at: float = T0) -> TokenRecord:
    return replace(record(obtained_at=obtained_at), access_expires_at=obtained_at + seconds)


def test_a_10s_token_wakes_the_default_schedule_in_time() -> None:
    assert parse_config(tomllib.loads(EXAMPLE)).schedule == DEFAULT  # what --print-config says
    rec = short_lived(10)
    due = refresh_due_at(rec, DEFAULT)
    assert T0 + 5 <= due < T0 + 10, due - T0  # before it expires, not before half its life
    sleep = next_wake(T0, [acts_at(due, None)], DEFAULT.check_interval)
    assert sleep == pytest.approx(due - T0) and sleep < 10
    # Waking then, it is due: a pass at T0 + sleep starts the refresh.
    assert T0 + sleep >= due


@pytest.mark.parametrize(
    ("acts", "expected"),
    [
        ([], 60.0),  # nothing to do: the interval, so clock jumps are still noticed
        ([T0 + 3600], 60.0),  # due later than the interval: the interval
        ([T0 + 7.5], 7.5),  # due sooner: then
        ([T0 + 40, T0 + 7.5, T0 + 12], 7.5),  # the earliest of several
        ([T0 + 0.2], MIN_WAKE),  # due in a moment: not sooner than the floor
        ([T0 - 30], MIN_WAKE),  # overdue (a clock jumped): at the floor, never a spin
    ],
)
def test_next_wake_is_the_earlier_of_due_and_interval(acts: list[float], expected: float) -> None:
    assert next_wake(T0, acts, 60.0) == pytest.approx(expected)


def test_a_short_interval_is_not_lengthened_by_the_floor() -> None:
    assert next_wake(T0, [T0 + 30], 0.2) == pytest.approx(0.2)
    assert next_wake(T0, [T0 - 5], 0.2) == pytest.approx(0.2)


def test_backoff_postpones_the_wake_to_the_retry_time() -> None:
    rec = short_lived(10)
    due = refresh_due_at(rec, DEFAULT)
    later = Backoff(failures=2, next_attempt_at=due + 25)
    assert acts_at(due, later) == due + 25
    assert next_wake(due + 1, [due + 25], DEFAULT.check_interval) == pytest.approx(24)
    earlier = Backoff(failures=1, next_attempt_at=due - 100)  # its retry time has passed
    assert acts_at(due, earlier) == due


def test_long_lived_tokens_keep_the_interval() -> None:
    rec = record()  # 14 days
    sched = Schedule()
    act = acts_at(refresh_due_at(rec, sched), None)
    assert act - T0 > 6 * 86400  # max_age (7 days) minus at most the jitter
    assert next_wake(T0 + 3600, [act], sched.check_interval) == sched.check_interval


def test_failures_alert_says_when_the_access_token_expires_or_expired() -> None:
    rec = short_lived(600)
    b = Backoff(failures=3, next_attempt_at=T0 + 700, last_error="Webex answered HTTP 503")
    soon = failures_alert("rec", rec, b, T0 + 300)
    assert "The access token expires in 5m 00s." in soon.text
    late = failures_alert("rec", rec, b, T0 + 606)
    assert "The access token expired 6s ago." in late.text and "expires in" not in late.text
