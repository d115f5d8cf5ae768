"""A grant obtained with `login --device` is kept alive by `wxtoken keep` like any other.

Short lifetimes on the emulator (10 s access token, 20 s sliding refresh token): the real
keeper refreshes on its own for longer than the refresh token's whole lifetime, and the grant
still works at the end, so it was the keeper's refreshes that carried it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import Wx, store_at, wait_until
from tests.test_keeper import start_keep

REFRESH_TTL = 20


def test_keeper_keeps_a_device_grant_alive(wx: Wx, emulator_factory: Any, figure: Any) -> None:
    emu = emulator_factory("--access-ttl", "10", "--refresh-ttl", str(REFRESH_TTL))
    wx.add_profile(emu)
    emu.policy(auto_approve=True)  # the person approves at once; the CLI still polls for it
    login = wx("login", "--device", "-p", "rec", check=0)
    assert "Signed in as" in login.stderr
    home = Path(wx.env["WXTOKEN_HOME"])
    first = store_at(home, wx.env).token_record("rec")
    assert first is not None
    cfg = wx.home / "keep.toml"
    cfg.write_text(
        '[schedule]\ncheck_interval = "0.2s"\nmax_age = "3s"\nmin_interval = 0\njitter = 0\n'
    )
    mark = emu.mark()
    keeper = start_keep(wx, "--config", str(cfg))
    started = time.monotonic()
    try:
        # Outlive the refresh token the sign-in stored.
        assert wait_until(lambda: time.monotonic() - started > REFRESH_TTL + 3, timeout=40)
        token = wx("token", "-p", "rec", check=0).stdout.strip()
    finally:
        code = keeper.stop()
    assert code == 0, keeper.log()
    refreshes = [e for e in emu.refreshes(mark) if e["status"] == 200]
    assert len(refreshes) >= 4, keeper.log()
    assert token
    last = store_at(home, wx.env).token_record("rec")
    assert last is not None and last.generation > first.generation
    assert first.refresh_expires_at is not None and last.refresh_expires_at is not None
    assert last.refresh_expires_at > first.refresh_expires_at, "the keeper slid the expiry"
    # Past the first refresh token's lifetime, the grant is alive: refresh works.
    wx("refresh", "-p", "rec", "--force", check=0)
    # A 20 s refresh token is always inside status's warning window; with none, it is ok.
    wx("status", "-p", "rec", "--warn-days", "0", check=0)
    figure(
        f"keeper on a device-login grant: {len(refreshes)} refreshes in "
        f"{REFRESH_TTL + 3} s (refresh token lifetime {REFRESH_TTL} s), grant alive after"
    )
