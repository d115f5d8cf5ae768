#!/usr/bin/env python3
"""The console's dashboard with many profiles: server-side render time of `GET /` (target for
200 profiles: under 300 ms), against `wxtoken status`'s own work in the same run (the state of
every profile from the store, `status.profile_status`), which the dashboard cannot avoid.

Sets up PROFILES profiles at the emulator (real code grants, stored through the store; every
tenth never signed in), then sends `GET /` through the whole ASGI stack (the Host, session and
header checks included) in this process, so the figure is the server's work without a socket.

    .venv/bin/python bench/console_dashboard.py [--profiles N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import seed_profiles, start_emulator, store_at

from wxtoken._local import Settings
from wxtoken.console.app import Console, build_app
from wxtoken.console.security import Gate
from wxtoken.profile import Profile
from wxtoken.status import profile_status
from wxtoken.store import TokenStore

REDIRECT = "http://127.0.0.1:9/callback"
TARGET_MS = 300.0


def setup(base: str, cid: str, secret: str, store: TokenStore, n: int) -> None:
    names = [f"site-{i:04d}" for i in range(n)]
    signed_in = [name for i, name in enumerate(names) if i % 10 != 9]
    seed_profiles(base, cid, secret, store, signed_in, REDIRECT)
    for name in names:  # every tenth never signed in: login_required on the dashboard
        if name not in signed_in:
            store.save_profile(
                Profile(name, cid, REDIRECT, ("spark:kms",), base), secret, replace=False
            )


async def request(
    app: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "scheme": "http",
        "server": ("127.0.0.1", 0),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "http_version": "1.1",
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), body, dict(start["headers"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wxtoken-console-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
    env.update({"WXTOKEN_HOME": str(tmp / "home"), "WXTOKEN_KEY_FILE": str(tmp / "key")})
    emu, info = start_emulator("--auto-approve", "--quiet", "--redirect-uri", REDIRECT)
    try:
        store = store_at(tmp / "home", env)
        setup(info["base_url"], info["client_id"], info["client_secret"], store, args.profiles)
    finally:
        emu.terminate()
        emu.wait()
    settings = Settings(env)
    gate = Gate()
    app = build_app(Console(settings, store, gate))
    status, _, headers = asyncio.run(request(app, gate.start_url(""), []))
    assert status == 303
    cookie = [(b"cookie", headers[b"set-cookie"].split(b";")[0])]

    def dashboard() -> float:
        t0 = time.perf_counter()
        status, body, _ = asyncio.run(request(app, "/", cookie))
        elapsed = time.perf_counter() - t0
        assert status == 200 and body.count(b"<tr data-profile=") == args.profiles
        return elapsed

    def statuses() -> float:
        t0 = time.perf_counter()
        rows = [profile_status(store, p, time.time()) for p in store.list_profiles()]
        assert len(rows) == args.profiles
        return time.perf_counter() - t0

    dashboard()  # templates compiled, SQLite pages cached: what every later request sees
    page = statistics.median(dashboard() for _ in range(args.rounds))
    base = statistics.median(statuses() for _ in range(args.rounds))
    verdict = "ok" if page * 1000 < TARGET_MS else "OVER TARGET"
    print(f"profiles                         {args.profiles}")
    print(
        f"dashboard GET / (median of {args.rounds})    {page * 1000:8.1f} ms  "
        f"(target < {TARGET_MS:.0f} ms: {verdict})"
    )
    print(f"baseline: profile_status x{args.profiles}     {base * 1000:8.1f} ms")
    print(f"ratio dashboard / baseline       {page / base:8.2f}x")


if __name__ == "__main__":
    main()
