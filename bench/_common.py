"""What the benchmark scripts share: a local emulator and a raw code grant over http.client."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wxtoken._local import Settings
from wxtoken.store import TokenStore, open_store

BIN = Path(sys.executable).parent
WXTOKEN = str(BIN / "wxtoken")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def store_at(home: Path, env: Mapping[str, str]) -> TokenStore:
    """The embedded store in `home` with the key settings of `env`."""
    return open_store(Settings(dict(env, WXTOKEN_HOME=str(home))))


def start_emulator(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`wxtoken emulator` on 127.0.0.1 with a free port; returns the process and its banner."""
    proc = subprocess.Popen(
        [WXTOKEN, "emulator", "--port", "0", "--json", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def connect(base_url: str) -> http.client.HTTPConnection:
    u = urllib.parse.urlsplit(base_url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def authorize_code(
    c: http.client.HTTPConnection, client_id: str, redirect: str, scope: str = "spark:kms"
) -> str:
    """A code from an auto-approving emulator's /v1/authorize redirect."""
    q = urllib.parse.urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect,
            "scope": scope,
            "state": "s",
        }
    )
    c.request("GET", f"/v1/authorize?{q}")
    r = c.getresponse()
    r.read()
    return urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)["code"][0]


def exchange_code(
    c: http.client.HTTPConnection, client_id: str, secret: str, code: str, redirect: str
) -> dict[str, Any]:
    form = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": secret,
            "code": code,
            "redirect_uri": redirect,
        }
    )
    c.request("POST", "/v1/access_token", form, FORM)
    r = c.getresponse()
    return dict(json.loads(r.read()))


def seed_profiles(
    base: str, cid: str, secret: str, store: TokenStore, names: list[str], redirect: str
) -> None:
    """Profiles of the emulator's integration, each with a real code grant stored through the
    store (no network for identity): what a bench needs many of."""
    from wxtoken import TokenManager
    from wxtoken.profile import Profile
    from wxtoken.token import Token

    c = connect(base)
    for name in names:
        store.save_profile(
            Profile(name, cid, redirect, ("spark:kms",), base), secret, replace=False
        )
        code = authorize_code(c, cid, redirect)
        started = time.time()
        tok = Token.from_response(exchange_code(c, cid, secret, code, redirect), started)
        TokenManager(name, store=store).adopt(tok, identify=False)
