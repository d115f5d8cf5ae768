"""A process queued behind another's failing refresh reports what the refresher saw (exit 5),
without repeating the failing requests, and never as a storage fault (exit 6)."""

from __future__ import annotations

import fcntl
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import WXTOKEN, Emulator, Wx
from wxtoken.store.flock import ProfileLocks


def wait_for_lock_holder(wx: Wx, timeout: float = 20.0) -> bool:
    """True once another process holds the profile's refresh lock (flock is not re-entrant
    across descriptors, so a failed non-blocking attempt means someone else holds it)."""
    path = ProfileLocks(Path(wx.env["WXTOKEN_HOME"]) / "locks").path("rec")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with open(path, "rb") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(fh, fcntl.LOCK_UN)
        time.sleep(0.02)
    return False


def start(wx: Wx, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [WXTOKEN, *args],
        env=dict(wx.env, **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("fault", "env"),
    [
        ({"kind": "status", "status": 503, "count": 1000}, {}),
        # Each attempt outlives a 2 s whole-exchange deadline: the refresher times out.
        ({"kind": "delay", "delay": 4.0, "count": 1000}, {"WXTOKEN_HTTP_DEADLINE": "2"}),
    ],
)
def test_waiter_behind_a_failing_refresh_exits_5(
    logged_in: tuple[Wx, Emulator], fault: dict[str, object], env: dict[str, str]
) -> None:
    wx, emu = logged_in
    emu.control("POST", "faults", dict(fault, endpoint="access_token"))
    mark = emu.mark()
    first = start(wx, "refresh", "--force", env=env)
    assert wait_for_lock_holder(wx), "the first refresh never took the profile's lock"
    second = start(wx, "refresh", "--force", env=env)
    _, err1 = first.communicate(timeout=180)
    seen_by_first = len(emu.ledger(mark))
    _, err2 = second.communicate(timeout=180)
    emu.control("DELETE", "faults")
    assert first.returncode == 5, err1
    assert second.returncode == 5, err2
    assert "just failed" in err2 and "Traceback" not in err2
    # The waiter repeated nothing: every request at the emulator was the first process's.
    assert len(emu.ledger(mark)) == seen_by_first
    wx("refresh", "--force", check=0)  # and nothing was lost
