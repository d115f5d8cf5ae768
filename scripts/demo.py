#!/usr/bin/env python3
"""`make demo`: the whole Webex token procedure, run for real against the bundled emulator.

It starts `wxtoken emulator` on 127.0.0.1, then runs, as an admin would: profile add (secret on
stdin), login through the real loopback listener with a scripted browser pressing Accept on the
consent page, status, token, verify, export, a forced refresh, a live probe, status --json
and the event log. Each command
and its output are shown; token values are shortened on screen. Everything lives in .demo/ and
is recreated on every run.

`make demo-tls` (`scripts/demo.py --tls`) runs the same procedure over HTTPS: the emulator
serves TLS with a throwaway CA (`wxtoken emulator --tls`), which wxtoken and the scripted
browser trust through SSL_CERT_FILE, in addition to the OS trust store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WXTOKEN = str(BIN / "wxtoken")
DEMO = ROOT / ".demo"
TOKENISH = re.compile(r"[A-Za-z0-9+/]{40,}(_[A-Z0-9]{4}_[0-9a-f-]{36})?|[0-9a-f]{64}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shorten(text: str) -> str:
    return TOKENISH.sub(lambda m: m.group(0)[:10] + "…", text)


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def run(
    env: dict[str, str],
    *args: str,
    stdin: str | None = None,
    expect: int = 0,
    show: str | None = None,
) -> subprocess.CompletedProcess[str]:
    print(f"$ {show or 'wxtoken ' + ' '.join(args)}", flush=True)
    proc = subprocess.run(
        [WXTOKEN, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    for stream in (proc.stdout, proc.stderr):
        if stream.strip():
            print(shorten(stream.rstrip()), flush=True)
    if proc.returncode != expect:
        print(
            f"demo: `wxtoken {' '.join(args)}` exited {proc.returncode}, expected {expect}",
            file=sys.stderr,
        )
        sys.exit(1)
    return proc


def main() -> int:
    tls = "--tls" in sys.argv[1:]
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(mode=0o700)
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    step(f"Start the bundled Webex emulator (127.0.0.1, a free port{', HTTPS' if tls else ''})")
    # --quiet: its request log would interleave with the demo's own output.
    emu_args = ["--port", "0", "--json", "--quiet", "--redirect-uri", redirect]
    emu_args += ["--tls"] if tls else []
    print(f"$ wxtoken emulator {' '.join(emu_args)}")
    emu = subprocess.Popen(
        [WXTOKEN, "emulator", *emu_args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emu.stdout is not None
        info = json.loads(emu.stdout.readline())
        print(
            f"emulator at {info['base_url']}; integration {info['client_id'][:12]}…; "
            f"user {info['user']['email']}"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
        env.update(
            {
                "WXTOKEN_HOME": str(DEMO / "home"),
                # The demo uses a key file so it runs without a desktop keyring or a prompt.
                "WXTOKEN_KEY_FILE": str(DEMO / "store.key"),
                "BROWSER": f"{sys.executable} {ROOT / 'scripts' / 'browser.py'} %s",
                "COLUMNS": "120",
            }
        )
        if tls:
            # Added to the OS trust store's anchors, for wxtoken and the scripted browser alike.
            env["SSL_CERT_FILE"] = info["ca_file"]
            print(f"$ export SSL_CERT_FILE={info['ca_file']}   # the emulator's throwaway CA")

        step("1. Create the profile (client secret via stdin, never on the command line)")
        run(
            env,
            "profile",
            "add",
            "recorder",
            "--client-id",
            info["client_id"],
            "--redirect-uri",
            redirect,
            "--preset",
            "verint-calling",
            "--base-url",
            info["base_url"],
            "--client-secret-stdin",
            stdin=info["client_secret"] + "\n",
            show="printf '%s\\n' \"$SECRET\" | wxtoken profile add recorder --client-id … "
            f"--redirect-uri {redirect} --preset verint-calling --base-url "
            f"{info['base_url']} --client-secret-stdin",
        )

        step("2. Sign in: loopback listener + scripted browser pressing Accept on the consent page")
        run(env, "login", "-p", "recorder")

        step("3. Status (exit 0 = ok, 3 = refresh token near its end, 4 = sign-in needed)")
        run(env, "status")

        step("4. A valid access token for scripts (no network while it is valid)")
        run(env, "token", "-p", "recorder")

        step("5. Verify at 'Webex': who, which org, which scopes")
        run(env, "verify", "-p", "recorder")

        step("6. Hand the refresh token to the recorder (the hand-off is recorded)")
        run(env, "export", "-p", "recorder", "--format", "json")

        step("7. Refresh now (exactly once, under the profile's lock)")
        run(env, "refresh", "-p", "recorder", "--force")

        step("8. Ask 'Webex' whether the grant is alive (a probe never refreshes)")
        run(env, "status", "--probe")

        step("9. Status for monitoring")
        run(env, "status", "--json")

        step("10. What happened, from the event log (fingerprints, never a secret)")
        run(env, "log", "-p", "recorder")
    finally:
        emu.send_signal(signal.SIGTERM)
        code = emu.wait(10)
    print(
        f"\nemulator stopped (exit {code}). Demo complete: the manual procedure, as one command "
        f"per step, against the emulator{' over TLS' if tls else ''}."
    )
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
