"""`wxtoken keep` keeps a service app alive: its 10-second access tokens are refreshed with its
own client id, and when Webex refuses its refresh token (revoked at the emulator) the keeper
mints it again through its minter instead of marking it login_required.

The real keeper process, the real CLI and an emulator subprocess; what happened is read from
the emulator's ledger and the keeper's log.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import Wx, wait_until
from tests.e2e.test_service_apps import add_minter, add_svc, mints
from tests.test_keeper import start_keep


def test_keeper_refreshes_and_remints_a_service_app(
    wx: Wx, emulator_factory: Any, figure: Any
) -> None:
    emu = emulator_factory("--access-ttl", "10")
    app = emu.info["service_app"]
    add_minter(wx, emu)
    add_svc(wx, emu)
    wx("login", "-p", "svc", check=0)
    cfg = wx.home / "keeper.toml"
    cfg.write_text(
        '[schedule]\ncheck_interval = "1s"\nmax_age = "1h"\nmin_interval = 0\njitter = 0\n'
    )

    def ok_refreshes(since: int) -> list[dict[str, Any]]:
        return [
            e
            for e in emu.refreshes(since)
            if e["status"] == 200 and e["client_id"] == app["client_id"]
        ]

    mark = emu.mark()
    keeper = start_keep(wx, "--config", str(cfg))
    try:
        # Its 10 s access token is kept fresh with its own credentials.
        assert wait_until(lambda: len(ok_refreshes(mark)) >= 2, timeout=30, interval=0.2), (
            keeper.log()
        )
        rt = wx("export", "-p", "svc", check=0).stdout.strip()
        emu.control("POST", "revoke", {"token": rt})
        revoked = emu.mark()
        started = time.monotonic()
        reminted = wait_until(
            lambda: any(e["status"] == 200 for e in mints(emu, revoked)), timeout=30, interval=0.2
        )
        took = time.monotonic() - started
        assert reminted, keeper.log()
        # ...and the new grant is refreshed on schedule like the old one.
        after = emu.mark()
        assert wait_until(lambda: len(ok_refreshes(after)) >= 1, timeout=30, interval=0.2), (
            keeper.log()
        )
        token = wx("token", "-p", "svc", check=0).stdout.strip()
        assert token.endswith(emu.info["org_id"])
        row = json.loads(wx("status", "-p", "svc", "--json").stdout)[0]
        assert row["state"] != "login_required" and row["cause"] is None, row
        assert wx("export", "-p", "svc", check=0).stdout.strip() != rt
        code = keeper.stop()
    finally:
        keeper.kill()
    log = keeper.log()
    assert code == 0, log
    refused = [e for e in emu.refreshes(revoked) if e["status"] == 400]
    assert refused and all(e["client_id"] == app["client_id"] for e in refused)
    assert "refreshed svc" in log and "refreshed minter" in log
    assert "Traceback" not in log and rt not in log and app["client_secret"] not in log
    figure(f"keeper, service app with 10 s access tokens: minted again {took:.1f} s after revoke")
