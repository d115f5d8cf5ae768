#!/usr/bin/env python3
"""The library's token refresh against a standard-library floor: CPU per refresh and refreshes/s.

Starts `wxtoken emulator` on 127.0.0.1 and signs one grant in, then, in interleaved rounds:

  floor      http.client: build the refresh form, POST it on a keep-alive connection, parse JSON
  library    WebexClient.exchange(RefreshGrant): what wxtoken sends and parses for one refresh
             (request, headers, TrackingID, body cap, error checks, Token with absolute expiries)
  manager    TokenManager.refresh(): the whole thing, with a key-file store: the profile's lock,
             decrypting, the exchange, sealing, and committing to SQLite (fsync) before use

CPU is this process's time.process_time() per refresh (the emulator runs in its own process);
refreshes/s is wall time. Ratios are taken within each round, then the median is printed, so a
noisy shared machine moves every path together. Target: library CPU at most 2x the floor.

    .venv/bin/python bench/refresh_cpu.py [--refreshes N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from _common import FORM, authorize_code, connect, exchange_code, start_emulator, store_at

from wxtoken import TokenManager
from wxtoken.client import WebexClient
from wxtoken.grants import ClientCredentials, RefreshGrant
from wxtoken.profile import Profile
from wxtoken.token import Token

REDIRECT = "http://127.0.0.1:9/callback"


def measure(fn: Callable[[], None], n: int) -> tuple[float, float]:
    """(CPU seconds per call, calls per wall second)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    return cpu / n, n / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refreshes", type=int, default=500, help="per path per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    emu, info = start_emulator("--auto-approve", "--redirect-uri", REDIRECT)
    tmp = Path(tempfile.mkdtemp(prefix="wxtoken-refresh-bench-"))
    try:
        base, cid, secret = info["base_url"], info["client_id"], info["client_secret"]
        conn = connect(base)
        started = time.time()
        grant = exchange_code(conn, cid, secret, authorize_code(conn, cid, REDIRECT), REDIRECT)
        rt = grant["refresh_token"]

        def floor() -> None:
            body = urllib.parse.urlencode(
                {
                    "grant_type": "refresh_token",
                    "client_id": cid,
                    "client_secret": secret,
                    "refresh_token": rt,
                }
            )
            conn.request("POST", "/v1/access_token", body, FORM)
            data = json.loads(conn.getresponse().read())
            assert "access_token" in data

        client = WebexClient(base)
        creds = ClientCredentials(cid, secret)
        previous = Token.from_response(grant, started)

        def library() -> None:
            client.exchange(RefreshGrant(rt, previous=previous), creds)

        store = store_at(tmp / "home", {"WXTOKEN_KEY_FILE": str(tmp / "key")})
        store.save_profile(Profile("b", cid, REDIRECT, ("spark:kms",), base), secret, replace=False)
        manager = TokenManager("b", store=store)
        manager.adopt(previous, identify=False)

        def full() -> None:
            assert manager.refresh().refreshed

        paths = {"floor": floor, "library": library, "manager": full}
        for fn in paths.values():
            for _ in range(50):
                fn()
        cpu: dict[str, list[float]] = {k: [] for k in paths}
        rate: dict[str, list[float]] = {k: [] for k in paths}
        ratio: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(args.rounds):
            for name, fn in paths.items():
                c, r = measure(fn, args.refreshes)
                cpu[name].append(c)
                rate[name].append(r)
            for name in paths:
                ratio[name].append(cpu[name][-1] / cpu["floor"][-1])
        manager.close()
        client.close()
    finally:
        emu.terminate()
        emu.wait(10)
    print(
        f"token refresh against the loopback emulator, median of {args.rounds} interleaved "
        f"rounds x {args.refreshes} refreshes:"
    )
    for name in paths:
        print(
            f"  {name:<8} CPU {statistics.median(cpu[name]) * 1000:6.3f} ms/refresh  "
            f"{statistics.median(ratio[name]):5.2f}x floor  "
            f"{statistics.median(rate[name]):7.0f} refreshes/s"
        )
    print("  target: library CPU <= 2x floor")


if __name__ == "__main__":
    main()
