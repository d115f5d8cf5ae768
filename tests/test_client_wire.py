"""WebexClient over a real loopback connection: what an in-process transport cannot show."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Emulator, Wx
from wxtoken.client import RetryPolicy, WebexClient
from wxtoken.errors import WebexUnavailable
from wxtoken.grants import ClientCredentials, RefreshGrant


def test_deadline_beats_a_trickling_server(wx: Wx, emu: Emulator) -> None:
    """One byte every 0.3 s never trips a 1 s read timeout; the 2 s deadline does."""
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
