"""The keeper wakes when a profile is due, not only every `check_interval`.

The real `wxtoken keep` with the configuration `--print-config` prints (only the metrics port
and the socket path adapted to the test) keeps a 10-second access token fresh on its own: no
client asks for a token, and the refreshes are read from the emulator's ledger.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import Emulator, Wx, wait_until
from tests.test_keeper import start_keep
from wxtoken.keeper.config import DEFAULT_METRICS_PORT


def test_default_config_refreshes_a_10s_token_in_time(
    wx: Wx, emulator_factory: Any, figure: Any
) -> None:
    emu = emulator_factory("--access-ttl", "10")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    home = Path(wx.env["WXTOKEN_HOME"])
    printed = wx("keep", "--print-config", check=0).stdout
    config = printed.replace(
        f'listen = "127.0.0.1:{DEFAULT_METRICS_PORT}"', 'listen = "127.0.0.1:0"'
    ).replace("# path = ", "path = ", 1)
    config = "\n".join(
        f'path = "{home / "keeper.sock"}"' if line.startswith("path = ") else line
        for line in config.splitlines()
    )
    assert config.count('"127.0.0.1:0"') == 1 and str(home / "keeper.sock") in config
    assert 'check_interval = "60s"' in config, "the test must run the default schedule"
    cfg = wx.home / "keeper.toml"
    cfg.write_text(config + "\n")
    mark = emu.mark()
    keeper = start_keep(wx, "--config", str(cfg), listen=None)
    started = time.monotonic()
    try:
        refreshed = wait_until(lambda: len(ok_refreshes(emu, mark)) >= 1, timeout=20, interval=0.2)
        first = time.monotonic() - started
        # And again once the new token is due: a finished refresh wakes the loop, which would
        # otherwise sleep the whole 60 s interval.
        again = wait_until(lambda: len(ok_refreshes(emu, mark)) >= 2, timeout=20, interval=0.2)
        second = time.monotonic() - started
    finally:
        code = keeper.stop()
    assert refreshed, f"no refresh within 20 s; keeper log:\n{keeper.log()}"
    assert again, f"only one refresh; keeper log:\n{keeper.log()}"
    assert code == 0
    figure(
        f"keeper, default schedule, 10 s access token: refreshed {first:.1f} s and "
        f"{second:.1f} s after start (needs <= 20 s)"
    )


def ok_refreshes(emu: Emulator, mark: int) -> list[dict[str, Any]]:
    return [e for e in emu.refreshes(mark) if e["status"] == 200]
