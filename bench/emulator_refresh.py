#!/usr/bin/env python3
"""Refresh grants per second the emulator serves on this machine (target: >= 1,000/s).

Starts `wxtoken emulator` on 127.0.0.1, signs in GRANTS grants, then load processes send
refresh_token grants over keep-alive connections for SECONDS and count 200 answers. The load
generator is the standard library's http.client, in separate processes so it does not share a
GIL with the emulator.

Then the same grants in process: one thread sending refreshes through `httpx2.Client` over
`EmulatorTransport` (what in-process tests pay per request), as a ratio to the HTTP figure.

    .venv/bin/python bench/emulator_refresh.py [--grants N] [--seconds S] [--procs P] [--conns C]
                                               [--quiet]

The emulator writes its request log to this script's stderr (send it to a file: one line per
request) unless --quiet is given, which passes --quiet on to it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
import urllib.parse

import httpx2
from _common import FORM, authorize_code, connect, exchange_code, start_emulator

from wxtoken.emulator import Emulator, EmulatorTransport, Policy

REDIRECT = "http://127.0.0.1:9/callback"


def sign_in(base: str, cid: str, secret: str, n: int) -> list[str]:
    c = connect(base)
    return [
        exchange_code(c, cid, secret, authorize_code(c, cid, REDIRECT), REDIRECT)["refresh_token"]
        for _ in range(n)
    ]


def load(
    base: str,
    cid: str,
    secret: str,
    tokens: list[str],
    seconds: float,
    conns: int,
    out: multiprocessing.Queue,
) -> None:  # type: ignore[type-arg]
    counts = [0] * conns
    errors = [0] * conns
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        c = connect(base)
        j = i
        while time.monotonic() < deadline:
            body = urllib.parse.urlencode(
                {
                    "grant_type": "refresh_token",
                    "client_id": cid,
                    "client_secret": secret,
                    "refresh_token": tokens[j % len(tokens)],
                }
            )
            c.request(
                "POST",
                "/v1/access_token",
                body,
                FORM,
            )
            r = c.getresponse()
            r.read()
            if r.status == 200:
                counts[i] += 1
            else:
                errors[i] += 1
            j += conns

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((sum(counts), sum(errors)))


def in_process(grants: int, seconds: float) -> tuple[int, float]:
    """Refreshes answered 200 in `seconds` through EmulatorTransport, single-threaded."""
    emu = Emulator(Policy(auto_approve=True))
    integ = emu.seed_default([REDIRECT])["integration"]
    creds = {"client_id": integ.client_id, "client_secret": integ.client_secret}
    with httpx2.Client(transport=EmulatorTransport(emu), base_url="http://127.0.0.1:1") as http:
        tokens = []
        for _ in range(grants):
            code = emu.authorization_code(integ.client_id, REDIRECT, ["spark:kms"])
            form = dict(creds, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
            tokens.append(http.post("/v1/access_token", data=form).json()["refresh_token"])
        ok = 0
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            form = dict(creds, grant_type="refresh_token", refresh_token=tokens[ok % grants])
            if http.post("/v1/access_token", data=form).status_code == 200:
                ok += 1
        return ok, time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grants", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--quiet", action="store_true", help="run the emulator without its log")
    args = ap.parse_args()
    quiet = ["--quiet"] if args.quiet else []
    emu, info = start_emulator("--auto-approve", "--redirect-uri", REDIRECT, *quiet)
    try:
        base, cid, secret = info["base_url"], info["client_id"], info["client_secret"]
        tokens = sign_in(base, cid, secret, args.grants)
        q: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        procs = [
            multiprocessing.Process(
                target=load,
                args=(base, cid, secret, tokens[i :: args.procs], args.seconds, args.conns, q),
            )
            for i in range(args.procs)
        ]
        started = time.monotonic()
        for p in procs:
            p.start()
        results = [q.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.monotonic() - started
    finally:
        emu.terminate()
        emu.wait(10)
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    over_http = ok / elapsed
    print(
        f"emulator refresh grants: {over_http:,.0f}/s over {elapsed:.1f} s "
        f"({ok} ok, {bad} errors; {args.procs} load processes x {args.conns} connections, "
        f"{args.grants} grants; target >= 1,000/s)"
    )
    local_ok, local_elapsed = in_process(args.grants, args.seconds)
    local = local_ok / local_elapsed
    print(
        f"emulator refresh grants in process (httpx2.Client over EmulatorTransport, one thread): "
        f"{local:,.0f}/s over {local_elapsed:.1f} s = {local / over_http:.2f}x the HTTP figure "
        f"of this run"
    )


if __name__ == "__main__":
    main()
