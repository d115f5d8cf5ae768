"""Single flight across hosts on the shared PostgreSQL store (real server, real subprocesses).

A "host" is a separate WXTOKEN_HOME (its own lock directory and socket) with the same key file
and the same database: what two machines sharing the store have in common.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import WXTOKEN, Wx, base_env, store_at, wait_until
from tests.test_concurrency import (
    PROCS,
    THREADS,
    WORKER,
    _kill_cycles,
    login_with_short_access,
    stampede,
)
from wxtoken._local import Settings
from wxtoken.store.postgres import LOCK_CLASS, advisory_key

pytest_plugins = ["tests.pg_fixtures"]


def on_pg(wx: Wx, url: str) -> Wx:
    wx.env["WXTOKEN_STORE"] = url
    return wx


def second_host(wx: Wx) -> dict[str, str]:
    env = base_env(wx.home / "host2")
    env["WXTOKEN_KEY_FILE"] = wx.env["WXTOKEN_KEY_FILE"]  # the one secret hosts share
    env["WXTOKEN_STORE"] = wx.env["WXTOKEN_STORE"]
    if "WXTOKEN_STORE_POOLER" in wx.env:
        env["WXTOKEN_STORE_POOLER"] = wx.env["WXTOKEN_STORE_POOLER"]
    return env


@pytest.mark.parametrize("policy", ["never", "always", "grace:60", "reuse-kills-family"])
def test_two_hosts_8x8_one_refresh_per_policy(
    wx: Wx, emulator_factory: Any, pg_url: str, policy: str, figure: Any
) -> None:
    emu = emulator_factory("--rotate", policy)
    on_pg(wx, pg_url)
    login_with_short_access(wx, emu)
    mark = emu.mark()
    results = stampede(wx, second_host(wx))
    assert [r["errors"] for r in results] == [[]] * (2 * PROCS)
    assert sum(r["answers"] for r in results) == 2 * PROCS * THREADS
    fingerprints = {f for r in results for f in r["fingerprints"]}
    refreshes = emu.refreshes(mark)
    figure(
        f"PostgreSQL, 2 hosts x {PROCS} procs x {THREADS} threads, rotate={policy}: refresh "
        f"requests at emulator = {len(refreshes)}, distinct tokens served = {len(fingerprints)}"
    )
    assert len(refreshes) == 1 and refreshes[0]["status"] == 200
    assert len(fingerprints) == 1


def test_kill_9_during_refresh_on_postgresql(
    wx: Wx, emulator_factory: Any, pg_url: str, figure: Any
) -> None:
    """40 kills of refresh loops at random moments: every grant still decrypts and refreshes."""
    emu = emulator_factory("--rotate", "never")
    on_pg(wx, pg_url)
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    counts = _kill_cycles(wx, emu, 40, workers=3)
    figure(
        f"PostgreSQL kill -9, rotate=never: cycles = {counts['cycles']}, refreshes completed = "
        f"{counts['refreshes_done']}, corrupted = {counts['corrupted']}, lost = {counts['lost']}"
    )
    assert counts["corrupted"] == 0 and counts["lost"] == 0
    assert counts["refreshes_done"] > counts["cycles"]


def test_kill_9_with_rotation_always_on_postgresql(
    wx: Wx, emulator_factory: Any, pg_url: str, figure: Any
) -> None:
    """As on SQLite: a kill between Webex's rotating answer and the commit can lose the grant,
    which shows as login_required; the record is never corrupted or deleted."""
    emu = emulator_factory("--rotate", "always")
    on_pg(wx, pg_url)
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    counts = _kill_cycles(wx, emu, 40, workers=3, tolerate_loss=True)
    figure(
        f"PostgreSQL kill -9, rotate=always: cycles = {counts['cycles']}, refreshes completed = "
        f"{counts['refreshes_done']}, corrupted = {counts['corrupted']}, lost = {counts['lost']}"
    )
    assert counts["corrupted"] == 0


def _lock_holder(url: str, name: str) -> int | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid "
            "AND objid = %s::oid AND granted",
            (LOCK_CLASS, advisory_key(name) & 0xFFFFFFFF),
        ).fetchone()
    return None if row is None else int(row[0])


def test_a_connection_killed_mid_refresh_writes_nothing_and_the_next_call_works(
    wx: Wx, emulator_factory: Any, pg_url: str
) -> None:
    emu = emulator_factory("--rotate", "never")
    on_pg(wx, pg_url)
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    before = store.token_record("rec")
    events_before = len(store.events("rec"))
    # Webex answers slowly, so the refresh holds its lock long enough to be found on a busy
    # machine; the holder is read once and terminated mid-request.
    emu.fault("delay", delay=6.0, count=1)
    proc = subprocess.Popen(
        [WXTOKEN, "refresh", "-p", "rec", "--force"], env=wx.env, stderr=subprocess.PIPE, text=True
    )
    holder: list[int | None] = [None]

    def found() -> bool:
        holder[0] = _lock_holder(pg_url, "rec")
        return holder[0] is not None

    assert wait_until(found), proc.communicate(timeout=30)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s)", (holder[0],)).fetchone()
    assert row == (True,), "the lock holder was still there to be terminated"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (5, 6), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    after = store.token_record("rec")
    assert after is not None and before is not None
    assert after.generation == before.generation and after.access_fp == before.access_fp
    assert len(store.events("rec")) == events_before  # nothing half-written, not even an event
    again = subprocess.run(
        [WXTOKEN, "refresh", "-p", "rec", "--force"], env=wx.env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    final = store.token_record("rec")
    assert final is not None and final.generation == before.generation + 1


def test_a_waiter_on_another_host_uses_the_winners_token(
    wx: Wx, emulator_factory: Any, pg_url: str
) -> None:
    emu = emulator_factory("--rotate", "always")
    on_pg(wx, pg_url)
    login_with_short_access(wx, emu)
    emu.fault("delay", delay=2.0, count=1)
    mark = emu.mark()
    outs: list[str] = []

    def ask(env: dict[str, str]) -> None:
        p = subprocess.run(
            [sys.executable, WORKER, "ask", "rec", "1", "60", str(time.time())],
            env=env,
            capture_output=True,
            text=True,
        )
        outs.append(p.stdout)

    first = threading.Thread(target=ask, args=(wx.env,))
    first.start()
    assert wait_until(lambda: _lock_holder(pg_url, "rec") is not None, timeout=10)
    ask(second_host(wx))  # queued behind the first host's lock, then reads its result
    first.join()
    assert len(emu.refreshes(mark)) == 1
    assert len(set(outs)) == 1 and '"errors": []' in outs[0]


def test_two_hosts_through_pgbouncer_in_transaction_mode(
    wx: Wx, emulator_factory: Any, pg_url: str, pgbouncer: str, figure: Any
) -> None:
    """Everything but keeper leadership works through transaction pooling: the refresh lock's
    timeouts are SET LOCAL and no statement is prepared on a server session."""
    emu = emulator_factory("--rotate", "always")
    on_pg(wx, pgbouncer)
    wx.env["WXTOKEN_STORE_POOLER"] = "transaction"
    login_with_short_access(wx, emu)
    mark = emu.mark()
    results = stampede(wx, second_host(wx))
    assert [r["errors"] for r in results] == [[]] * (2 * PROCS)
    refreshes = emu.refreshes(mark)
    figure(
        f"PostgreSQL through PgBouncer (transaction mode), 2 hosts x {PROCS} x {THREADS}, "
        f"rotate=always: refresh requests at emulator = {len(refreshes)}"
    )
    assert len(refreshes) == 1
    status = wx("status", check=0)
    assert "ok" in status.stdout
    # A keeper needs a session of its own to lead: refused in one line, not half-working.
    keep = wx("keep", "--all", "--metrics-listen", "127.0.0.1:0", timeout=30)
    assert keep.returncode == 2, keep.stderr
    assert len(keep.stderr.strip().splitlines()) == 1 and "WXTOKEN_STORE_POOLER" in keep.stderr


def test_a_frozen_lock_holder_is_dropped_and_a_waiter_on_another_host_proceeds(
    wx: Wx, emulator_factory: Any, pg_url: str, figure: Any
) -> None:
    """A holder that stops answering without closing its socket (SIGSTOP here; a frozen VM or
    a cut network alike) is ended by PostgreSQL's idle_in_transaction_session_timeout, which
    wxtoken derives from the HTTP deadline; the waiter gets the lock before its own wait ends."""
    emu = emulator_factory("--rotate", "never")
    on_pg(wx, pg_url)
    wx.env["WXTOKEN_HTTP_DEADLINE"] = "1"
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    emu.fault("delay", delay=0.8, count=1)
    frozen = subprocess.Popen(
        [WXTOKEN, "refresh", "-p", "rec", "--force"], env=wx.env, stderr=subprocess.PIPE
    )
    try:
        assert wait_until(lambda: _lock_holder(pg_url, "rec") is not None, timeout=10)
        frozen.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        other = dict(second_host(wx), WXTOKEN_HTTP_DEADLINE="1")
        waiter = subprocess.run(
            [WXTOKEN, "refresh", "-p", "rec", "--force"], env=other, capture_output=True, text=True
        )
        waited = time.monotonic() - started
    finally:
        frozen.kill()
        frozen.wait()
    timeouts = Settings({"WXTOKEN_HTTP_DEADLINE": "1"}).timeouts
    figure(
        f"PostgreSQL, lock holder frozen with SIGSTOP: a waiter on another host refreshed after "
        f"{waited:.1f} s (holder dropped after {timeouts.holder_idle:g} s of silence; a waiter "
        f"waits up to {timeouts.lock_wait:g} s)"
    )
    assert waiter.returncode == 0, waiter.stderr
    assert timeouts.holder_idle - 2 < waited < timeouts.lock_wait
