"""The keeper forgets what is gone and remembers only a bounded amount of what it serves.

A removed profile leaves /metrics at the next pass; the token socket's cache of managers is an
LRU of a fixed size, holding only profiles that exist, so asking for thousands of made-up names
costs no memory. A real store and the real socket, in this process.
"""

from __future__ import annotations

import io
import json
import secrets
import socket
import tracemalloc
from pathlib import Path
from typing import Any

from tests.conftest import Emulator, Wx, store_at
from wxtoken.keeper.config import parse_config
from wxtoken.keeper.managers import MANAGER_CACHE_SIZE
from wxtoken.keeper.run import Keeper
from wxtoken.keeper.service import TokenSocket
from wxtoken.profile import Profile
from wxtoken.store import TokenStore


def keeper_on(
    wx: Wx,
    manager_cache: int = MANAGER_CACHE_SIZE,
    profiles: tuple[str, ...] | None = None,
    log: io.StringIO | None = None,
) -> Keeper:
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    keeper = Keeper(
        store,
        parse_config({}),
        profiles=profiles,
        log=log or io.StringIO(),
        manager_cache=manager_cache,
    )
    keeper.alerts.start()
    return keeper


def add_profiles(store: TokenStore, emu: Emulator, names: list[str]) -> None:
    for name in names:
        profile = Profile(name, emu.client_id, emu.redirect_uri, ("spark:kms",), emu.base_url)
        store.save_profile(profile, emu.client_secret, replace=False)


def test_a_removed_profile_leaves_metrics_and_the_cache(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, "a")
    wx.add_profile(emu, "b")
    assert wx.login("b").returncode == 0
    keeper = keeper_on(wx)
    try:
        keeper.tick()
        assert keeper.answer("b", 60)["ok"] is True
        metrics = keeper.metrics().decode()
        assert 'wxtoken_access_token_expiry_seconds{profile="b"}' in metrics
        assert 'wxtoken_profile_state{profile="a",state="login_required"} 1.0' in metrics
        wx("profile", "remove", "b", "--yes", check=0)
        keeper.tick()
        metrics = keeper.metrics().decode()
        assert 'profile="b"' not in metrics, "a removed profile is still exported"
        assert 'wxtoken_profile_state{profile="a",state="login_required"} 1.0' in metrics
        assert "b" not in keeper.cached_profiles
        gone = keeper.answer("b", 60)
        assert gone["ok"] is False and gone["exit_code"] == 2, gone["error"]
    finally:
        keeper.close()


def test_a_named_profile_removed_while_kept_is_dropped_not_fatal(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, "a")
    wx.add_profile(emu, "b")
    log = io.StringIO()
    keeper = keeper_on(wx, profiles=("a", "b"), log=log)
    try:
        keeper.tick()
        wx("profile", "remove", "b", "--yes", check=0)
        keeper.tick()
        keeper.tick()
        assert 'profile="b"' not in keeper.metrics().decode()
        assert keeper.answer("b", 60)["exit_code"] == 2
        assert log.getvalue().count("profile 'b' was removed; not keeping it") == 1
    finally:
        keeper.close()


def test_the_manager_cache_is_an_lru_of_its_size(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, "p0")
    names = [f"p{i}" for i in range(6)]
    keeper = keeper_on(wx, manager_cache=3)
    try:
        add_profiles(keeper.store, emu, names[1:])
        for name in names:
            assert keeper.answer(name, 60)["exit_code"] == 4  # signed out: no tokens yet
        assert keeper.cached_profiles == ("p3", "p4", "p5")
        keeper.answer("p3", 60)  # used: now the most recent
        keeper.answer("p0", 60)  # evicts the least recently used, p4
        assert keeper.cached_profiles == ("p5", "p3", "p0")
    finally:
        keeper.close()
    assert 100 <= MANAGER_CACHE_SIZE <= 10_000  # documented in run.py: a bound, but a roomy one


def ask(path: str, name: str) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(json.dumps({"profile": name}).encode() + b"\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return dict(json.loads(data))


def test_asking_for_10000_unknown_names_costs_no_memory(wx: Wx, emu: Emulator, figure: Any) -> None:
    wx.add_profile(emu)
    keeper = keeper_on(wx)
    path = str(wx.home / "k.sock")
    server = TokenSocket(Path(path), keeper.answer, log=io.StringIO())
    server.start()
    try:
        for _ in range(200):  # warm up: imports, sqlite statement cache, thread machinery
            ask(path, f"x{secrets.token_hex(8)}")
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        codes = {ask(path, f"x{secrets.token_hex(8)}")["exit_code"] for _ in range(10_000)}
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    finally:
        server.stop()
        keeper.close()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert codes == {2}  # every one: no such profile
    assert keeper.cached_profiles == ()
    assert grown < 256 * 1024, f"grew by {grown} bytes"
    figure(f"keeper socket, 10,000 unknown profile names: memory grew by {grown / 1024:.0f} KiB")
