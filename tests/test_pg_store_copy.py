"""`wxtoken store copy` and `store info` between the embedded store and PostgreSQL (real CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Wx, store_at

pytest_plugins = ["tests.pg_fixtures"]


def test_copy_to_postgresql_and_back_keeps_every_grant_working(
    wx: Wx, emulator_factory: Any, pg_url: str, tmp_path: Path
) -> None:
    emu = emulator_factory("--rotate", "always")
    for name in ("rec", "second"):
        wx.add_profile(emu, name)
        assert wx.login(name).returncode == 0
    wx("export", "-p", "rec", "--format", "verint", check=0)  # a hand-off to carry over
    wx("profile", "use", "rec", check=0)
    home = Path(wx.env["WXTOKEN_HOME"])
    before = store_at(home, wx.env)
    handoffs = [e.kind for e in before.events("rec")]

    out = wx("store", "copy", "--to", pg_url, check=0)
    assert out.returncode == 0, out.stderr
    assert "copied 2 profile(s), 2 token set(s)" in out.stdout
    on_pg = dict(wx.env, WXTOKEN_STORE=pg_url)
    info = json.loads(wx("store", "info", "--json", env=on_pg, check=0).stdout)
    assert info["backend"] == "postgresql" and info["profiles"] == 2
    assert info["key_source"] == "keyfile" and info["schema_version"] == 3
    pg = store_at(home, on_pg)
    assert [e.kind for e in pg.events("rec")] == handoffs  # the history came along
    assert pg.default_profile() == "rec"
    rec = pg.token_record("rec")
    assert rec is not None and rec.copy.state == "current"
    for name in ("rec", "second"):  # every grant still refreshes from the copy
        assert wx("refresh", "-p", name, "--force", env=on_pg, check=0).returncode == 0
    after = pg.token_record("rec")
    assert after is not None and after.copy.state == "stale"  # rotated since the hand-off

    # And back to a new embedded file.
    back = tmp_path / "back" / "wxtoken.db"
    back.parent.mkdir(mode=0o700)
    out = wx("store", "copy", "--to", f"sqlite:///{back}", env=on_pg, check=0)
    assert out.returncode == 0, out.stderr
    on_file = dict(wx.env, WXTOKEN_STORE=f"sqlite:///{back}")
    for name in ("rec", "second"):
        assert wx("refresh", "-p", name, "--force", env=on_file, check=0).returncode == 0
    # A copy never merges: the target now holds profiles.
    again = wx("store", "copy", "--to", f"sqlite:///{back}", env=on_pg)
    assert again.returncode == 2 and "already holds profiles" in again.stderr


def test_store_info_and_copy_never_show_a_password(wx: Wx, pg_url: str) -> None:
    with_pw = pg_url.replace("postgres@", "postgres:Pw-CANARY-42@")
    out = wx("store", "info", env={"WXTOKEN_STORE": with_pw}, check=0)
    assert out.returncode == 0, out.stderr
    assert "backend: postgresql" in out.stdout and "exists: False" in out.stdout
    assert "Pw-CANARY" not in out.stdout + out.stderr
    refused = wx("store", "copy", "--to", with_pw)
    assert refused.returncode == 2 and "~/.pgpass" in refused.stderr
    assert "Pw-CANARY" not in refused.stdout + refused.stderr


def test_doctor_looks_at_the_shared_store_not_a_file(
    wx: Wx, pg_url: str, emulator_factory: Any
) -> None:
    with_pw = pg_url.replace("postgres@", "postgres:Pw-CANARY-77@")
    env = {"WXTOKEN_STORE": with_pw}
    empty = wx("doctor", "--json", "--offline", env=env)
    [store] = [f for f in json.loads(empty.stdout)["findings"] if f["check"] == "store"]
    assert store["level"] == "warning" and "no wxtoken store in postgresql://" in store["detail"]
    emu = emulator_factory()
    wx.env.update(env)
    wx.add_profile(emu)
    ready = wx("doctor", "--json", "--offline")
    [store] = [f for f in json.loads(ready.stdout)["findings"] if f["check"] == "store"]
    assert store["level"] == "ok" and "schema 3; no keeper leads" in store["detail"]
    down = wx(
        "doctor",
        "--json",
        "--offline",
        env={"WXTOKEN_STORE": "postgresql://u:Pw-CANARY-77@127.0.0.1:1/x"},
    )
    [store] = [f for f in json.loads(down.stdout)["findings"] if f["check"] == "store"]
    assert store["level"] == "problem" and "cannot be reached" in store["detail"]
    assert down.returncode == 6
    for proc in (empty, ready, down):
        assert "Pw-CANARY" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
