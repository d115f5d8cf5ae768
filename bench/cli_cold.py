#!/usr/bin/env python3
"""Cold start of the CLI, as ratios against baselines measured in the same run.

1. `wxtoken token` with a valid stored token  vs  `python -c pass`   (target: <= 4x)
2. `wxtoken exchange --code -`                vs  a bare standard-library exchange (urllib POST
                                                  of the same form, JSON parsed, nothing stored)
Runs are interleaved (A, B, A, B, ...) so machine noise hits both sides alike; medians reported.
Everything runs against a local emulator on 127.0.0.1.

    .venv/bin/python bench/cli_cold.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import WXTOKEN, authorize_code, connect, start_emulator

BARE_EXCHANGE = r"""
import json, sys, urllib.parse, urllib.request
base, client_id, redirect = sys.argv[1:4]
secret, code = sys.stdin.read().split()
form = urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": client_id,
    "client_secret": secret, "code": code, "redirect_uri": redirect}).encode()
with urllib.request.urlopen(urllib.request.Request(base + "/v1/access_token", data=form)) as r:
    body = json.loads(r.read())
assert "access_token" in body
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd[:3])} failed: {proc.stderr.strip()}")
    return elapsed


def get_code(base: str, client_id: str, redirect: str) -> str:
    return authorize_code(connect(base), client_id, redirect, "spark:kms spark:people_read")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wxtoken-bench-"))
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    emu, info = start_emulator("--auto-approve", "--redirect-uri", redirect)
    try:
        base, cid, secret = info["base_url"], info["client_id"], info["client_secret"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
        env.update({"WXTOKEN_HOME": str(tmp / "home"), "WXTOKEN_KEY_FILE": str(tmp / "key")})
        subprocess.run(
            [
                WXTOKEN,
                "profile",
                "add",
                "b",
                "--client-id",
                cid,
                "--redirect-uri",
                redirect,
                "--preset",
                "verint-calling",
                "--base-url",
                base,
                "--client-secret-stdin",
            ],
            env=env,
            input=secret + "\n",
            check=True,
            text=True,
            capture_output=True,
        )
        timed([WXTOKEN, "exchange", "--code", "-"], env, get_code(base, cid, redirect) + "\n")

        py = [sys.executable, "-c", "pass"]
        tok = [WXTOKEN, "token"]
        for _ in range(3):  # warm the page cache for both
            timed(py, env)
            timed(tok, env)
        base_t, tok_t = [], []
        for _ in range(args.runs):
            base_t.append(timed(py, env))
            tok_t.append(timed(tok, env))
        bare_t, ex_t = [], []
        for _ in range(max(5, args.runs // 2)):
            bare_t.append(
                timed(
                    [sys.executable, "-c", BARE_EXCHANGE, base, cid, redirect],
                    env,
                    f"{secret} {get_code(base, cid, redirect)}",
                )
            )
            ex_t.append(
                timed(
                    [WXTOKEN, "exchange", "--code", "-"], env, get_code(base, cid, redirect) + "\n"
                )
            )
    finally:
        emu.terminate()
        emu.wait(10)
    med = statistics.median
    print(f"python -c pass              median {med(base_t) * 1000:7.1f} ms  ({len(base_t)} runs)")
    print(
        f"wxtoken token (valid token) median {med(tok_t) * 1000:7.1f} ms  "
        f"ratio {med(tok_t) / med(base_t):.2f}x  (target <= 4x)"
    )
    print(f"bare stdlib exchange        median {med(bare_t) * 1000:7.1f} ms  ({len(bare_t)} runs)")
    print(
        f"wxtoken exchange            median {med(ex_t) * 1000:7.1f} ms  "
        f"ratio {med(ex_t) / med(bare_t):.2f}x  (also stores, looks up the user)"
    )


if __name__ == "__main__":
    main()
