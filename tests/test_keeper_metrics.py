"""The keeper's /metrics tells the recorder's copy of the refresh token apart: never handed
over, current, or stale once a refresh the recorder did not see replaced it (the Prometheus rule
WxtokenRecorderCopyStale watches it)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Wx
from tests.test_keeper import VClock, keeper_for, run_for


def copy_states(metrics: bytes) -> dict[str, float]:
    prefix = 'wxtoken_recorder_copy_state{profile="rec",state="'
    found = {}
    for line in metrics.decode().splitlines():
        if line.startswith(prefix):
            state, _, value = line[len(prefix) :].partition('"} ')
            found[state] = float(value)
    return found


def test_the_recorder_copy_state_is_exported(wx: Wx, emulator_factory: Any) -> None:
    emu = emulator_factory("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    seen = []
    for step in ("signed in", "exported", "rotated by a script"):
        if step == "exported":
            wx("export", check=0)
        elif step == "rotated by a script":
            wx("refresh", "--force", check=0)
        clock = VClock(emu)
        keeper, _ = keeper_for(wx, emu, clock, {}, probe_interval=0, min_interval="1d")
        keeper.alerts.start()
        try:
            run_for(keeper, clock, 1)
            seen.append(copy_states(keeper.metrics()))
        finally:
            keeper.close()
    assert seen == [
        {"none": 1.0, "current": 0.0, "stale": 0.0},
        {"none": 0.0, "current": 1.0, "stale": 0.0},
        {"none": 0.0, "current": 0.0, "stale": 1.0},
    ]
