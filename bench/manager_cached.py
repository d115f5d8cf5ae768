#!/usr/bin/env python3
"""Cached TokenManager.access_token() calls per second, against a bare dict-and-clock lookup
measured in the same process (target: at least half the baseline's rate).

    .venv/bin/python bench/manager_cached.py [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import store_at

from wxtoken import TokenManager
from wxtoken.profile import Profile
from wxtoken.token import Token


def rate(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return calls / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wxtoken-bench-"))
    store = store_at(tmp / "home", {"WXTOKEN_KEY_FILE": str(tmp / "key")})
    store.save_profile(
        Profile("b", "Cid", "http://127.0.0.1:1/cb", ("spark:kms",)), "s", replace=False
    )
    now = time.time()
    tm = TokenManager("b", store=store)
    tm.adopt(Token("AT-bench", now + 86400, "RT", now + 10 * 86400, (), now), identify=False)
    tm.access_token()

    # Baseline: the least any cache can do, a dict lookup and a clock comparison.
    cache = {"b": ("AT-bench", now + 86400)}
    clock = time.time

    def baseline() -> str | None:
        tok, exp = cache["b"]
        return tok if exp - clock() >= 300 else None

    base, ours = [], []
    for _ in range(5):  # interleaved rounds: noise hits both sides alike
        base.append(rate(baseline, args.calls))
        ours.append(rate(tm.access_token, args.calls))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"dict-and-clock baseline           {b:12,.0f} calls/s")
    print(
        f"TokenManager.access_token() cached {o:12,.0f} calls/s  ratio {o / b:.2f} (target >= 0.5)"
    )


if __name__ == "__main__":
    main()
