"""Every command agrees on where the home, store, key and keeper socket are, with or without
WXTOKEN_HOME: the real processes, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import WXTOKEN, Emulator, Wx, wait_until


def default_home_env(wx: Wx, tmp_path: Path) -> dict[str, str]:
    """The user's environment with no WXTOKEN_HOME: the store goes to the platform directory."""
    env = {k: v for k, v in wx.env.items() if k != "WXTOKEN_HOME"}
    env["HOME"] = str(tmp_path / "user")
    env.pop("XDG_DATA_HOME", None)
    return env


def test_token_asks_the_keeper_on_the_default_home(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    env = default_home_env(wx, tmp_path)
    wx.env = env
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    home = tmp_path / "user" / ".local" / "share" / "wxtoken"
    status = json.loads(wx("status", "--json", check=0).stdout)
    assert status[0]["storage"] == str(home / "wxtoken.db")
    keeper = subprocess.Popen(
        [WXTOKEN, "keep", "--metrics-listen", "127.0.0.1:0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until((home / "keeper.sock").exists, timeout=20)
        no_key = {k: v for k, v in env.items() if k != "WXTOKEN_KEY_FILE"}
        got = subprocess.run(
            [WXTOKEN, "token"], env=no_key, capture_output=True, text=True, timeout=60
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == wx("token", check=0).stdout.strip()
        assert "keeper: running" in wx("status", check=0).stdout
    finally:
        keeper.terminate()
        _, err = keeper.communicate(timeout=30)
    assert keeper.returncode == 0, err
    assert f"token socket at {home / 'keeper.sock'}" in err
    assert "Traceback" not in err


def test_bad_setting_is_a_usage_error_in_every_command(wx: Wx) -> None:
    for args in (["status"], ["token"], ["profile", "list"]):
        proc = wx(*args, env={"WXTOKEN_HTTP_DEADLINE": "soon"})
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "WXTOKEN_HTTP_DEADLINE" in proc.stderr
