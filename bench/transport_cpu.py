#!/usr/bin/env python3
"""CPU per token refresh (POST + JSON parse) for each HTTP path, against the http.client floor.

Starts `wxtoken emulator` on 127.0.0.1, signs one grant in, then sends refresh_token grants over
one keep-alive connection per path and measures this process's CPU (time.process_time) per
request; the emulator runs in its own process and is not counted. Paths:

  http.client               the floor: HTTPConnection.request + getresponse + read
  httpx2.Client.post        what WebexClient uses today
  httpx2.HTTPTransport      httpx2's own transport, called directly (httpcore + h11)
  Client(StdlibTransport)   ours, behind httpx2.Client
  StdlibTransport direct    ours, handle_request with a prebuilt httpx2.Request (the hot path)

Every path sends the same prebuilt form body and parses the same JSON. Rounds are interleaved
(every path once per round) and the medians are printed, in ms and as a ratio to the floor of the
same round, so a noisy shared machine moves all paths together. Target: the direct call at most
2x the floor.

    .venv/bin/python bench/transport_cpu.py [--requests N] [--rounds R] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
import urllib.parse
from collections.abc import Callable

import httpx2
from _common import FORM, authorize_code, connect, exchange_code, start_emulator

from wxtoken.transport import StdlibTransport

REDIRECT = "http://127.0.0.1:9/callback"
PATH = "/v1/access_token"


def check(status: int, body: bytes) -> None:
    if status != 200 or "access_token" not in json.loads(body):
        raise SystemExit(f"unexpected answer: HTTP {status}")


def paths(base: str, body: bytes) -> tuple[dict[str, Callable[[], None]], list[Callable[[], None]]]:
    """One refresh callable per path, each with its own keep-alive connection; and closers."""
    url = base + PATH
    floor_conn = connect(base)

    def floor() -> None:
        floor_conn.request("POST", PATH, body, FORM)
        r = floor_conn.getresponse()
        check(r.status, r.read())

    def via_client(client: httpx2.Client) -> Callable[[], None]:
        def post() -> None:
            r = client.post(url, content=body, headers=FORM)
            check(r.status_code, r.content)

        return post

    def direct(transport: httpx2.BaseTransport) -> Callable[[], None]:
        request = httpx2.Request("POST", url, content=body, headers=FORM)

        def send() -> None:
            r = transport.handle_request(request)
            check(r.status_code, r.read())

        return send

    httpx_client = httpx2.Client(trust_env=False)
    httpx_transport = httpx2.HTTPTransport(trust_env=False)
    ours = StdlibTransport()
    ours_client = httpx2.Client(transport=StdlibTransport())
    found = {
        "http.client": floor,
        "httpx2.Client.post": via_client(httpx_client),
        "httpx2.HTTPTransport": direct(httpx_transport),
        "Client(StdlibTransport)": via_client(ours_client),
        "StdlibTransport direct": direct(ours),
    }
    closers = [floor_conn.close, httpx_client.close, httpx_transport.close, ours.close]
    return found, [*closers, ours_client.close]


def cpu_per_call(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000, help="per path per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--profile", action="store_true", help="profile the direct call instead")
    args = ap.parse_args()
    emu, info = start_emulator("--auto-approve", "--redirect-uri", REDIRECT)
    try:
        base, cid, secret = info["base_url"], info["client_id"], info["client_secret"]
        c = connect(base)
        grant = exchange_code(c, cid, secret, authorize_code(c, cid, REDIRECT), REDIRECT)
        c.close()
        form = {
            "grant_type": "refresh_token",
            "client_id": cid,
            "client_secret": secret,
            "refresh_token": grant["refresh_token"],
        }
        calls, closers = paths(base, urllib.parse.urlencode(form).encode())
        for fn in calls.values():
            for _ in range(args.warmup):
                fn()
        if args.profile:
            profile(calls["StdlibTransport direct"], args.requests)
            return
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        ratios: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, fn in calls.items():
                seconds[name].append(cpu_per_call(fn, args.requests))
            for name in calls:
                ratios[name].append(seconds[name][-1] / seconds["http.client"][-1])
        for close in closers:
            close()
    finally:
        emu.terminate()
        emu.wait(10)
    print(
        f"CPU per refresh POST + JSON parse, median of {args.rounds} interleaved rounds "
        f"x {args.requests} requests (keep-alive, loopback emulator):"
    )
    for name in calls:
        ms = statistics.median(seconds[name]) * 1000
        ratio = statistics.median(ratios[name])
        spread = f"{min(ratios[name]):.2f}-{max(ratios[name]):.2f}"
        print(f"  {name:<26} {ms:6.3f} ms   {ratio:4.2f}x floor (rounds {spread})")
    print("  target: StdlibTransport direct <= 2x floor")


def profile(fn: Callable[[], None], n: int) -> None:
    prof = cProfile.Profile(time.process_time)  # CPU, as measured above, not wall time
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
