#!/usr/bin/env python3
"""The keeper managing many profiles against the emulator: refreshes/s sustained and peak RSS,
on the embedded SQLite store and on a PostgreSQL store, in the same run.
(targets for 10,000 profiles: at least 500 refreshes/s; under 200 MB on SQLite, 250 MB on
PostgreSQL)

Sets up PROFILES signed-in profiles (real code grants at the emulator, stored through the
store), then runs the real `wxtoken keep --all` with a schedule that makes every profile due
again one second after its last refresh, so the keeper refreshes as fast as it can. The rate is
read from the emulator's ledger over a window after a warm-up; peak memory is the keeper
process's VmHWM from /proc.

    .venv/bin/python bench/keeper_scale.py [--profiles N] [--seconds S] [--workers W]
        [--backends sqlite,postgresql]

PostgreSQL is the server at WXTOKEN_BENCH_POSTGRES (a URL to a database the bench may CREATE
DATABASE from), default postgresql://postgres@127.0.0.1:5432/postgres; the bench makes its own
database there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
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


PG_ADMIN = os.environ.get("WXTOKEN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGETS_MB = {"sqlite": 200, "postgresql": 250}


@contextlib.contextmanager
def backend_store(backend: str) -> Iterator[str | None]:
    """The WXTOKEN_STORE value for `backend` (None: the default SQLite file)."""
    if backend == "sqlite":
        yield None
        return
    import psycopg

    name = f"wxtoken_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(PG_ADMIN)
    try:
        yield urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(backend: str, args: argparse.Namespace) -> tuple[float, float, bool]:
    tmp = Path(tempfile.mkdtemp(prefix="wxtoken-keeper-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
    env.update({"WXTOKEN_HOME": str(tmp / "home"), "WXTOKEN_KEY_FILE": str(tmp / "key")})
    emu, info = start_emulator(
        "--auto-approve", "--control", "--quiet", "--access-ttl", "3600", "--redirect-uri", REDIRECT
    )
    keeper = None
    with backend_store(backend) as store_url:
        if store_url is not None:
            env["WXTOKEN_STORE"] = store_url
        try:
            base = info["base_url"]
            store = store_at(tmp / "home", env)
            t0 = time.monotonic()
            setup(base, info["client_id"], info["client_secret"], store, args.profiles)
            store.close()
            print(
                f"{backend}: set up {args.profiles} signed-in profiles in "
                f"{time.monotonic() - t0:.1f} s"
            )
            cfg = tmp / "keeper.toml"
            cfg.write_text(
                f'[schedule]\ncheck_interval = "1s"\nmax_age = "1s"\nmin_interval = 0\n'
                f"jitter = 0\nworkers = {args.workers}\n[alerts]\nthresholds = []\n"
            )
            time.sleep(1.1)  # every profile is now due
            keeper = subprocess.Popen(
                [WXTOKEN, "keep", "--all", "--config", str(cfg), "--metrics-listen",
                 "127.0.0.1:0"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
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
    return (after - before) / elapsed, hwm, alive


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    rates: dict[str, float] = {}
    for backend in args.backends.split(","):
        rate, hwm, alive = run(backend, args)
        rates[backend] = rate
        print(
            f"keeper on {backend} with {args.profiles} profiles, {args.workers} workers: "
            f"{rate:,.0f} refreshes/s sustained over {args.seconds:.0f} s (target >= 500); "
            f"peak RSS {hwm:.0f} MB (target < {TARGETS_MB[backend]} MB); still running at the "
            f"end: {alive}"
        )
    if len(rates) == 2:
        print(f"postgresql / sqlite refresh rate: {rates['postgresql'] / rates['sqlite']:.2f}x")


if __name__ == "__main__":
    main()
