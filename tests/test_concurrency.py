"""Single flight across processes, and crash safety under kill -9 (real subprocesses).

Figures are read from the emulator's ledger: what actually reached "Webex".
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HELPERS, Emulator, Wx, store_at
from wxtoken import TokenManager
from wxtoken.errors import LoginRequired

WORKER = str(HELPERS / "worker.py")
PROCS, THREADS = 8, 8


def login_with_short_access(wx: Wx, emu: Emulator) -> None:
    emu.policy(access_ttl=2)
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    time.sleep(2.2)  # the access token has now expired
    emu.policy(access_ttl=3600)


def stampede(wx: Wx, *more_hosts: dict[str, str]) -> list[dict[str, Any]]:
    """PROCS processes of THREADS threads each, on this host and each of `more_hosts` (other
    environments sharing the store), all asking for the token at the same moment."""
    start = time.time() + 3.0 + len(more_hosts)
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "ask", "rec", str(THREADS), "60", str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in (wx.env, *more_hosts)
        for _ in range(PROCS)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.parametrize("policy", ["never", "always", "grace:60", "reuse-kills-family"])
def test_8x8_one_refresh_per_policy(
    wx: Wx, emulator_factory: Any, policy: str, figure: Any
) -> None:
    emu = emulator_factory("--rotate", policy)
    login_with_short_access(wx, emu)
    mark = emu.mark()
    results = stampede(wx)
    assert [r["errors"] for r in results] == [[]] * PROCS
    assert sum(r["answers"] for r in results) == PROCS * THREADS
    fingerprints = {f for r in results for f in r["fingerprints"]}
    refreshes = emu.refreshes(mark)
    figure(
        f"8 procs x 8 threads, rotate={policy}: refresh requests at emulator = "
        f"{len(refreshes)}, distinct tokens served = {len(fingerprints)}"
    )
    assert len(refreshes) == 1 and refreshes[0]["status"] == 200
    assert len(fingerprints) == 1


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        ({"kind": "status", "status": 429, "retry_after": "1", "count": 2}, 2),
        ({"kind": "status", "status": 503, "count": 2}, 2),
        ({"kind": "html", "status": 502, "count": 1}, 1),
    ],
)
def test_8x8_with_faults(
    wx: Wx, emulator_factory: Any, fault: dict[str, Any], extra: int, figure: Any
) -> None:
    emu = emulator_factory("--rotate", "always")
    login_with_short_access(wx, emu)
    rt_before = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env).token_record("rec")
    emu.fault(**fault)
    mark = emu.mark()
    results = stampede(wx)
    assert [r["errors"] for r in results] == [[]] * PROCS
    hits = [e for e in emu.ledger(mark) if e["endpoint"] == "access_token"]
    ok = [e for e in hits if e.get("grant_type") == "refresh_token"]
    figure(
        f"8x8 with {fault['kind']} {fault.get('status')} x{fault['count']}: token-endpoint "
        f"requests = {len(hits)} (faults {extra} + refresh {len(ok)})"
    )
    assert len(ok) == 1 and len(hits) == extra + 1, "one refresh in flight, retried by one"
    rec = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env).token_record("rec")
    assert rec is not None and rec.status == "ok" and rt_before is not None
    assert rec.generation == rt_before.generation + 1


def _kill_cycles(
    wx: Wx, emu: Emulator, cycles: int, workers: int, tolerate_loss: bool = False
) -> dict[str, int]:
    """Start `workers` refresh loops on their own profiles; kill -9 one at a random moment,
    check its stored record, restart it; `cycles` kills in all."""
    for i in range(workers):
        if i:
            wx.add_profile(emu, f"p{i}")
            assert wx.login(f"p{i}").returncode == 0
    names = ["rec"] + [f"p{i}" for i in range(1, workers)]
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    rng = random.Random(int(os.environ.get("WXTOKEN_TEST_SEED", "20261124")))
    counts = {"cycles": 0, "corrupted": 0, "lost": 0, "refreshes_done": 0}

    def spawn(name: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, WORKER, "loop", name],
            env=wx.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    procs = {n: spawn(n) for n in names}
    try:
        while counts["cycles"] < cycles:
            name = rng.choice(names)
            time.sleep(rng.uniform(0.0, 0.08))
            procs[name].send_signal(signal.SIGKILL)
            procs[name].wait()
            counts["cycles"] += 1
            try:
                loaded = store.load_token(name)
                assert loaded is not None
            except Exception:
                counts["corrupted"] += 1
                raise
            try:
                TokenManager(name, store=store).refresh()
            except LoginRequired:
                counts["lost"] += 1
                if not tolerate_loss:
                    raise
                assert store.token_record(name) is not None, "kept for diagnosis, not deleted"
                assert wx.login(name).returncode == 0  # a person signs in again
            procs[name] = spawn(name)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    counts["refreshes_done"] = len(emu.refreshes())
    return counts


@pytest.mark.parametrize(("policy", "cycles"), [("never", 120), ("grace:60", 100)])
def test_kill_9_during_refresh_and_save(
    wx: Wx, emulator_factory: Any, policy: str, cycles: int, figure: Any
) -> None:
    """kill -9 at random points of refresh-and-save (220 cycles over both policies): every
    stored record still decrypts and its refresh token still works at the emulator."""
    emu = emulator_factory("--rotate", policy)
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    counts = _kill_cycles(wx, emu, cycles, workers=3)
    figure(
        f"kill -9, rotate={policy}: cycles = {counts['cycles']}, refreshes completed at "
        f"emulator = {counts['refreshes_done']}, corrupted = {counts['corrupted']}, "
        f"lost = {counts['lost']}"
    )
    assert counts["corrupted"] == 0 and counts["lost"] == 0
    assert counts["refreshes_done"] > counts["cycles"], "kills landed during real refresh work"


def test_kill_9_with_rotation_always_measures_the_window(
    wx: Wx, emulator_factory: Any, figure: Any
) -> None:
    """With a refresh token that dies the moment Webex rotates it, a kill between Webex's
    answer and our commit loses the grant; no client can prevent that. Measured, not hidden:
    the record is never corrupted or deleted, and the loss shows as login_required."""
    emu = emulator_factory("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    counts = _kill_cycles(wx, emu, 60, workers=3, tolerate_loss=True)
    figure(
        f"kill -9, rotate=always: cycles = {counts['cycles']}, refreshes completed = "
        f"{counts['refreshes_done']}, corrupted = {counts['corrupted']}, grant lost (killed "
        f"between Webex's answer and the commit) = {counts['lost']}"
    )
    assert counts["corrupted"] == 0
