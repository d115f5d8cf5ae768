"""Deadlines against a Webex that never finishes answering (headers trickle in forever).

The profile's base URL is a hostile server on 127.0.0.1. The keeper stays responsive while its
refreshes are stuck (/healthz answers), and SIGTERM stops it within 15 s with exit 0: a refresh
in flight is abandoned once its exchange deadline passes, and refreshes not yet started are
dropped. `wxtoken refresh --force` gives up with exit 5 within the deadline plus 10 s.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import Emulator, Wx, profile_add_args, store_at, wait_until
from tests.hostile_servers import Server, serving, trickles_head
from tests.test_keeper import start_keep

DEADLINE = "1"  # seconds, WXTOKEN_HTTP_DEADLINE: the smallest the setting allows


def point_at(wx: Wx, emu: Emulator, name: str, base_url: str) -> None:
    """Move a signed-in profile to another base URL; its tokens stay (same client id)."""
    args = profile_add_args(emu, name)
    args[args.index("--base-url") + 1] = base_url
    wx(*args, "--replace", "--client-secret-stdin", input=emu.client_secret + "\n", check=0)


def test_keeper_stays_responsive_and_stops_in_time(wx: Wx, emu: Emulator, figure: Any) -> None:
    names = ["rec", "rec2", "rec3"]
    for name in names:
        wx.add_profile(emu, name)
        assert wx.login(name).returncode == 0
    home = Path(wx.env["WXTOKEN_HOME"])
    before = {n: store_at(home, wx.env).token_record(n) for n in names}
    cfg = wx.home / "keeper.toml"
    # One worker: the first refresh is stuck, the other two wait their turn behind it.
    cfg.write_text(
        '[schedule]\ncheck_interval = "1s"\nmax_age = "1s"\nmin_interval = 0\njitter = 0\n'
        "workers = 1\n"
    )
    with serving(trickles_head) as server:
        for name in names:
            point_at(wx, emu, name, server.url)
        keeper = start_keep(
            wx, "--all", "--config", str(cfg), env={"WXTOKEN_HTTP_DEADLINE": DEADLINE}
        )
        try:
            assert wait_until(lambda: server.accepted >= 1, timeout=20), keeper.log()
            # While refreshes are stuck on the trickling server, health keeps answering.
            for _ in range(6):
                health = urllib.request.urlopen(f"{keeper.url}/healthz", timeout=5)
                assert health.status == 200
                time.sleep(0.5)
            assert wait_until(lambda: busy(server), timeout=10), "no refresh in flight"
            stopping = time.monotonic()
            code = keeper.stop(timeout=60)
            took = time.monotonic() - stopping
        finally:
            keeper.kill()
    log = keeper.log()
    assert code == 0, log
    assert took < 15, f"SIGTERM took {took:.1f} s:\n{log}"
    assert "Traceback" not in log
    figure(f"keeper stopped {took:.1f} s after SIGTERM, a refresh stuck on a trickling server")
    # Nothing was lost: every profile keeps the grant it had.
    for name in names:
        after, was = store_at(home, wx.env).token_record(name), before[name]
        assert after is not None and was is not None
        assert after.refresh_fp == was.refresh_fp and after.status == "ok"


def busy(server: Server) -> bool:
    """A connection is open and still being trickled to."""
    return any(not p.finished.is_set() for p in server.peers)


def test_refresh_force_gives_up_within_the_deadline_plus_10s(
    logged_in: tuple[Wx, Emulator], figure: Any
) -> None:
    wx, emu = logged_in
    with serving(trickles_head) as server:
        point_at(wx, emu, "rec", server.url)
        started = time.monotonic()
        proc = wx("refresh", "--force", env={"WXTOKEN_HTTP_DEADLINE": DEADLINE}, timeout=120)
        took = time.monotonic() - started
    assert proc.returncode == 5, proc.stderr
    assert took < float(DEADLINE) + 10, f"took {took:.1f} s"
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    figure(f"refresh --force against a trickling server: exit 5 after {took:.1f} s")
