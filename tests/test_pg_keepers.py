"""Highly available keepers on the shared PostgreSQL store (real server, real `wxtoken keep`).

Three keepers on three "hosts" (own homes and sockets; the same key file and database) keep
short-lived grants while the leading one is killed with SIGKILL, again and again. What must
hold: another keeper leads within the bound, no access token lapses (each profile is refreshed
before its token expires), no refresh happens twice, and each alert is delivered once.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import Wx, base_env, store_at, wait_until
from tests.test_keeper import KeeperProcess, Webhook, start_keep
from tests.test_keeper import webhook as webhook  # the fixture
from tests.test_keeper_profiles import keeper_on
from wxtoken.keeper.leading import LEADER_POLL
from wxtoken.store.pg_leader import leaders

pytest_plugins = ["tests.pg_fixtures"]

ACCESS_TTL = 8
KILLS = 20
# kill -9 closes the leader's socket, so PostgreSQL frees the lead at once; a keeper standing
# by bids every LEADER_POLL seconds, then runs one pass. Headroom for a loaded 2-core machine.
FAILOVER_BOUND = LEADER_POLL + 4.0


def leader_pid(url: str) -> int | None:
    with psycopg.connect(url) as conn:
        found = leaders(conn)
    if not found:
        return None
    m = re.search(r"pid (\d+)$", found[0])
    return int(m.group(1)) if m else None


def host_env(wx: Wx, i: int) -> dict[str, str]:
    env = base_env(wx.home / f"host{i}")
    for key in ("WXTOKEN_KEY_FILE", "WXTOKEN_STORE"):
        env[key] = wx.env[key]
    return env


def test_kill_9_of_the_leading_keeper_20_times(
    wx: Wx, emulator_factory: Any, pg_url: str, webhook: Webhook, figure: Any
) -> None:
    emu = emulator_factory(
        "--access-ttl", str(ACCESS_TTL), "--refresh-ttl", "90", "--refresh-expiry", "fixed"
    )
    wx.env["WXTOKEN_STORE"] = pg_url
    names = ["rec", "p1", "p2"]
    for name in names:
        wx.add_profile(emu, name)
        assert wx.login(name).returncode == 0
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    start_gen = {n: store.token_record(n).generation for n in names}  # type: ignore[union-attr]
    mark = emu.mark()
    cfg = wx.home / "keeper.toml"
    cfg.write_text(
        '[schedule]\ncheck_interval = "1s"\nrefresh_fraction = 0.5\nmin_interval = 0\n'
        'jitter = 0\nprobe_interval = 0\n[alerts]\nthresholds = ["75s", "60s"]\n'
        f'[[alerts.webhook]]\nurl = "{webhook.url}"\n'
    )
    keepers: dict[int, KeeperProcess] = {}
    hosts: dict[int, int] = {}  # keeper pid -> its host

    def launch(i: int) -> None:
        k = start_keep(wx, "--all", "--config", str(cfg), env=host_env(wx, i))
        keepers[k.proc.pid] = k
        hosts[k.proc.pid] = i

    rng = random.Random(20261126)
    takeovers: list[float] = []
    try:
        for i in range(3):
            launch(i)
        assert wait_until(lambda: leader_pid(pg_url) in keepers, timeout=15)
        for n in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.5))
            old = leader_pid(pg_url)
            assert old in keepers, f"leader {old} is not one of ours"
            keepers[old].kill()
            killed = time.monotonic()
            moved = wait_until(
                lambda old=old: leader_pid(pg_url) not in (None, old), timeout=30, interval=0.02
            )
            takeovers.append(time.monotonic() - killed)
            assert moved, f"kill {n + 1}: nobody took the lead"
            del keepers[old]
            launch(hosts[old])  # that host restarts its keeper, which stands by
        new = leader_pid(pg_url)
        assert new is not None
        metrics = urllib.request.urlopen(f"{keepers[new].url}/metrics").read().decode()
        assert 'wxtoken_keeper_leading{keeper="wxtoken keep ' in metrics
        assert re.search(rf"wxtoken_keeper_leading\{{[^}}]*pid {new}\"\}} 1\.0", metrics)
        standby = next(k for pid, k in keepers.items() if pid != new)
        other = urllib.request.urlopen(f"{standby.url}/metrics").read().decode()
        assert f'pid {new}"}} 1.0' in other  # a standby names the leader too
        shown = wx("status", env=host_env(wx, 1))
        assert "leading keeper: wxtoken keep " in shown.stderr and f"pid {new}" in shown.stderr
    finally:
        for k in keepers.values():
            k.kill()
    refreshes = emu.refreshes(mark)
    assert all(e["status"] == 200 for e in refreshes), "no refresh failed"
    gaps: list[float] = []
    increments = 0
    for name in names:
        times = [e.at for e in reversed(store.events(name, ("refresh",), limit=10_000))]
        gaps += [b - a for a, b in itertools.pairwise(times)]
        rec = store.token_record(name)
        assert rec is not None
        increments += rec.generation - start_gen[name]
    sent = Counter(
        (e.detail["key"], e.detail["channel"])
        for e in store.events(kinds=("alert_sent",), limit=10_000)
    )
    figure(
        f"PostgreSQL, 3 keepers, kill -9 of the leader x{KILLS}: takeover max "
        f"{max(takeovers):.2f} s, median {sorted(takeovers)[len(takeovers) // 2]:.2f} s "
        f"(bound {FAILOVER_BOUND:g} s); refreshes at emulator = {len(refreshes)}, generation "
        f"steps = {increments}; longest gap between refreshes of a grant = {max(gaps):.1f} s "
        f"(access token lives {ACCESS_TTL} s); webhook alerts = {len(webhook.received)}"
    )
    assert max(takeovers) <= FAILOVER_BOUND
    assert len(refreshes) == increments, "a refresh happened twice (or went unrecorded)"
    assert max(gaps) < ACCESS_TTL, "an access token lapsed before its refresh"
    assert sent and max(sent.values()) == 1, "an alert was delivered twice on one channel"
    hooks = sum(1 for (_, channel) in sent if channel.startswith("webhook"))
    assert len(webhook.received) == hooks >= 1


def test_a_standby_serves_the_token_another_host_just_wrote(
    wx: Wx, emulator_factory: Any, pg_url: str
) -> None:
    """A keeper standing by answers its host's socket from the shared store: the token another
    host has just refreshed, not one it served before."""
    emu = emulator_factory("--access-ttl", "3600")
    wx.env["WXTOKEN_STORE"] = pg_url
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    cfg = wx.home / "keeper.toml"
    cfg.write_text('[schedule]\ncheck_interval = "1s"\nprobe_interval = 0\n')
    keepers = [start_keep(wx, "--all", "--config", str(cfg), env=host_env(wx, i)) for i in (0, 1)]
    try:
        assert wait_until(lambda: leader_pid(pg_url) is not None, timeout=15)
        standby = next(i for i, k in enumerate(keepers) if k.proc.pid != leader_pid(pg_url))
        from_socket = dict(host_env(wx, standby), WXTOKEN_KEY_FILE="")  # only the keeper can
        first = wx("token", env=from_socket, check=0).stdout.strip()
        assert first and wx("token", env=from_socket, check=0).stdout.strip() == first
        assert wx("refresh", "-p", "rec", "--force", env=host_env(wx, 2), check=0)
        fresh = wx("token", env=host_env(wx, 2), check=0).stdout.strip()
        assert fresh != first
        assert wait_until(
            lambda: wx("token", env=from_socket, check=0).stdout.strip() == fresh, timeout=10
        ), "the standby kept serving the token it had cached"
    finally:
        for k in keepers:
            k.kill()


def test_a_change_on_another_host_drops_the_cached_manager(
    wx: Wx, emulator_factory: Any, pg_url: str
) -> None:
    """Each write sends a NOTIFY; a keeper listening drops what it cached for that profile (its
    manager: the profile's settings and client), so a change made elsewhere applies at once."""
    emu = emulator_factory("--access-ttl", "3600")
    wx.env["WXTOKEN_STORE"] = pg_url
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    keeper = keeper_on(wx)
    stop = threading.Event()
    watcher = threading.Thread(
        target=keeper.store.records.watch, args=(keeper.managers.drop, stop), daemon=True
    )
    watcher.start()
    try:
        assert wait_until(lambda: listening(pg_url), timeout=10)
        time.sleep(0.2)  # its first "anything may have changed" has been handled
        assert keeper.answer("rec", 60)["ok"] is True
        assert keeper.cached_profiles == ("rec",)
        assert wx("refresh", "-p", "rec", "--force", env=host_env(wx, 2), check=0)
        assert wait_until(lambda: not keeper.cached_profiles, timeout=10)
        assert keeper.answer("rec", 60)["ok"] is True  # rebuilt from the store
    finally:
        stop.set()
        watcher.join(5)
        keeper.close()


def listening(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'wxtoken listen%%' "
            "AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])
