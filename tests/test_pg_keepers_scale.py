"""Three keepers, 1,000 short-lived grants, one PostgreSQL store: each grant is refreshed once
per due time (never twice, never late) and each alert crossing is delivered once per channel."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2

from tests.conftest import Wx, store_at, wait_until
from tests.emulator_requests import SCOPES, login
from tests.test_keeper import KeeperProcess, Webhook, start_keep
from tests.test_keeper import webhook as webhook  # the fixture
from tests.test_pg_keepers import host_env, leader_pid
from wxtoken import TokenManager
from wxtoken.profile import Profile
from wxtoken.token import Token

pytest_plugins = ["tests.pg_fixtures"]

PROFILES = 1000
ACCESS_TTL = 30.0  # due at half-life: 15 s after each refresh
FRACTION = 0.5
RUN = 40.0  # seconds the keepers run after the last grant was seeded: two due times each


def test_three_keepers_1000_profiles_once_per_due_time(
    wx: Wx, emulator_factory: Any, pg_url: str, webhook: Webhook, figure: Any
) -> None:
    emu = emulator_factory(
        "--auto-approve", "--access-ttl", str(int(ACCESS_TTL)), "--refresh-ttl", "120",
        "--refresh-expiry", "fixed",
    )  # fmt: skip
    wx.env["WXTOKEN_STORE"] = pg_url
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    names = [f"org{i:04d}" for i in range(PROFILES)]
    seeded = time.monotonic()
    with httpx2.Client() as http:
        for name in names:
            profile = Profile(name, emu.client_id, emu.redirect_uri, tuple(SCOPES.split()),
                              emu.base_url)  # fmt: skip
            store.save_profile(profile, emu.client_secret, replace=False)
            started = time.time()
            tok = Token.from_response(login(emu, http), started)
            TokenManager(name, store=store).adopt(tok, identify=False)
    seeding = time.monotonic() - seeded
    mark = emu.mark()
    cfg = wx.home / "keeper.toml"
    cfg.write_text(
        f'[schedule]\ncheck_interval = "1s"\nrefresh_fraction = {FRACTION}\nmin_interval = 0\n'
        'jitter = 0\nprobe_interval = 0\nmax_age = "7d"\n'
        '[alerts]\nthresholds = ["100s"]\n'  # crossed 20 s after each sign-in, once
        f'[[alerts.webhook]]\nurl = "{webhook.url}"\n'
    )
    keepers: list[KeeperProcess] = []
    try:
        for i in range(3):
            keepers.append(start_keep(wx, "--all", "--config", str(cfg), env=host_env(wx, i)))
        assert wait_until(lambda: leader_pid(pg_url) is not None, timeout=15)
        time.sleep(RUN)
        delivered = wait_until(lambda: len(webhook.received) >= PROFILES, timeout=30)
    finally:
        for k in keepers:
            k.stop()
    refreshes = emu.refreshes(mark)
    early: list[float] = []
    late: list[float] = []
    counts: list[int] = []
    increments = 0
    for name in names:
        times = [e.at for e in reversed(store.events(name, ("adopted", "refresh"), limit=100))]
        counts.append(len(times) - 1)
        for gap in (b - a for a, b in itertools.pairwise(times)):
            # Due at FRACTION of the token's life left; a second refresh in the same due window
            # would show as a gap far shorter than that, a missed one as a gap past the life.
            (
                early if gap < ACCESS_TTL * FRACTION - 2 else late if gap >= ACCESS_TTL else []
            ).append(gap)
        rec = store.token_record(name)
        assert rec is not None
        increments += rec.generation - 1
    sent = Counter(
        (e.detail["key"], e.detail["channel"])
        for e in store.events(kinds=("alert_sent",), limit=100_000)
    )
    figure(
        f"PostgreSQL, 3 keepers, {PROFILES} profiles with {ACCESS_TTL:g} s access tokens "
        f"(seeded in {seeding:.0f} s), {RUN:g} s: refreshes at emulator = {len(refreshes)} "
        f"(generation steps {increments}), refreshes per profile {min(counts)}-{max(counts)}, "
        f"too early = {len(early)}, too late = {len(late)}; webhook alerts = "
        f"{len(webhook.received)} for {PROFILES} crossings, most per crossing and channel = "
        f"{max(sent.values()) if sent else 0}"
    )
    assert all(e["status"] == 200 for e in refreshes)
    assert len(refreshes) == increments
    assert not early and not late
    assert min(counts) >= 2, "every profile was due at least twice in the run"
    assert delivered and len(webhook.received) == PROFILES
    assert max(sent.values()) == 1
