"""A real wxtoken library user in its own process, for cross-process tests.

  worker.py ask PROFILE THREADS MIN_VALID START_EPOCH   all threads ask at START_EPOCH; prints
                                                        JSON with token fingerprints, never tokens
  worker.py loop PROFILE                                refresh() until killed
The store is the one named by WXTOKEN_HOME / WXTOKEN_KEY_FILE in the environment.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time

from wxtoken import TokenManager


def ask(profile: str, threads: int, min_valid: float, start: float) -> None:
    tm = TokenManager(profile)
    out: list[str] = []
    errors: list[str] = []

    def run() -> None:
        time.sleep(max(0.0, start - time.time()))
        try:
            tok = tm.access_token(min_valid=min_valid)
            out.append(hashlib.sha256(tok.encode()).hexdigest()[:12])
        except Exception as exc:  # reported to the parent, which asserts on it
            errors.append(f"{type(exc).__name__}: {exc}")

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps({"fingerprints": sorted(set(out)), "answers": len(out), "errors": errors}))


def loop(profile: str) -> None:
    tm = TokenManager(profile)
    print("ready", flush=True)
    while True:
        tm.refresh()


if __name__ == "__main__":
    if sys.argv[1] == "ask":
        ask(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        loop(sys.argv[2])
