#!/usr/bin/env python3
"""The keeper managing many profiles against the emulator: refreshes/s sustained and peak RSS.
(targets for 10,000 profiles: at least 500 refreshes/s, under 200 MB)

Sets up PROFILES signed-in profiles (real code grants at the emulator, stored through the
store), then runs the real `wxtoken keep --all` with a schedule that makes every profile due
again one second after its last refresh, so the keeper refreshes as fast as it can. The rate is
read from the emulator's ledger over a window after a warm-up; peak memory is the keeper
process's VmHWM from /proc.

    .venv/bin/python bench/keeper_scale.py [--profiles N] [--seconds S] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from _common import WXTOKEN, seed_profiles, start_emulator, store_at

from wxtoken.store import TokenStore

REDIRECT = "http://127.0.0.1:9/callback"


def control(base: str, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{base}/_emulator/{path}") as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def setup(base: str, cid: str, secret: str, store: TokenStore, n: int) -> None:
    seed_profiles(base, cid, secret, store, [f"p{i:05d}" for i in range(n)], REDIRECT)


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wxtoken-keeper-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
    env.update({"WXTOKEN_HOME": str(tmp / "home"), "WXTOKEN_KEY_FILE": str(tmp / "key")})
    emu, info = start_emulator(
        "--auto-approve", "--control", "--access-ttl", "3600", "--redirect-uri", REDIRECT
    )
    keeper = None
    try:
        base = info["base_url"]
        store = store_at(tmp / "home", env)
        t0 = time.monotonic()
        setup(base, info["client_id"], info["client_secret"], store, args.profiles)
        store.close()
        print(f"set up {args.profiles} signed-in profiles in {time.monotonic() - t0:.1f} s")
        cfg = tmp / "keeper.toml"
        cfg.write_text(
            f'[schedule]\ncheck_interval = "1s"\nmax_age = "1s"\nmin_interval = 0\n'
            f"jitter = 0\nworkers = {args.workers}\n[alerts]\nthresholds = []\n"
        )
        time.sleep(1.1)  # every profile is now due
        keeper = subprocess.Popen(
            [WXTOKEN, "keep", "--all", "--config", str(cfg), "--metrics-listen", "127.0.0.1:0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(args.warmup)
        before = control(base, "ledger?since=999999999")["total"]
        t1 = time.monotonic()
        time.sleep(args.seconds)
        after = control(base, "ledger?since=999999999")["total"]
        elapsed = time.monotonic() - t1
        hwm = vm_hwm_mb(keeper.pid)
        alive = keeper.poll() is None
    finally:
        if keeper is not None:
            keeper.terminate()
            keeper.wait(60)
        emu.terminate()
        emu.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)  # a store and its key file: not left in /tmp
    rate = (after - before) / elapsed
    print(
        f"keeper with {args.profiles} profiles, {args.workers} workers: {rate:,.0f} "
        f"refreshes/s sustained over {elapsed:.0f} s (target >= 500); peak RSS {hwm:.0f} MB "
        f"(target < 200 MB); still running at the end: {alive}"
    )


if __name__ == "__main__":
    main()
