"""The emulator over real loopback HTTP, for what only a connection or a process shows: faults
that act on the connection (delay, drop, trickle), TCP_NODELAY on accepted sockets, the control
API being off unless asked for (and never served off loopback), and the TOML config of the
`wxtoken emulator` process.

The rules themselves are tested in process (test_emulator_authorize, _grants, _resources and
_control); test_emulator_contract.py proves both front ends answer alike.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest

from tests.conftest import Emulator, start_emulator
from tests.emulator_requests import login, refresh
from wxtoken.emulator.server import EmulatorOptions, _bind, serve
from wxtoken.errors import UsageError


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    emu = start_emulator()
    yield emu
    emu.stop()


@pytest.fixture
def e(server: Emulator) -> Iterator[Emulator]:
    server.control("POST", "reset")
    server.policy(auto_approve=True, rotate="never")
    server.control("POST", "consent-user", {"email": "admin@example.com"})
    yield server


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=10, follow_redirects=False, trust_env=False) as c:
        yield c


def test_fault_delay_and_drops(e: Emulator, http: httpx2.Client) -> None:
    t = login(e, http)
    e.fault("delay", delay=0.5)
    started = time.monotonic()
    assert refresh(e, http, t["refresh_token"]).status_code == 200
    assert time.monotonic() - started >= 0.5
    e.fault("drop")
    mark = e.mark()
    with pytest.raises(httpx2.HTTPError):
        refresh(e, http, t["refresh_token"])
    assert not [x for x in e.ledger(mark) if x.get("grant_type") == "refresh_token"]
    # drop_after_commit: the refresh happened at "Webex", the answer was lost.
    e.policy(rotate="always")
    e.fault("drop_after_commit")
    mark = e.mark()
    with pytest.raises(httpx2.HTTPError):
        refresh(e, http, t["refresh_token"])
    committed = [x for x in e.ledger(mark) if x.get("grant_type") == "refresh_token"]
    assert committed and committed[0]["status"] == 200 and committed[0]["rotated"]
    assert refresh(e, http, t["refresh_token"]).status_code == 400  # old one is dead


def test_fault_trickle(e: Emulator, http: httpx2.Client) -> None:
    e.fault("trickle", delay=0.2)
    with (
        httpx2.Client(timeout=httpx2.Timeout(5, read=1)) as c,
        c.stream("POST", f"{e.base_url}/v1/access_token", data={}) as r,
    ):
        first = next(r.iter_bytes())
        assert first == b" "


def test_control_api_off_by_default() -> None:
    emu = start_emulator()
    try:
        with httpx2.Client(trust_env=False) as c:
            base = emu.base_url
        proc = emu.proc
        assert proc.poll() is None
    finally:
        emu.stop()
    import subprocess

    from tests.conftest import WXTOKEN

    p = subprocess.Popen(
        [WXTOKEN, "emulator", "--port", "0", "--json"], stdout=subprocess.PIPE, text=True
    )
    try:
        base = json.loads(p.stdout.readline())["base_url"]  # type: ignore[union-attr]
        with httpx2.Client(trust_env=False) as c:
            assert c.post(f"{base}/_emulator/reset").status_code == 404
            assert c.get(f"{base}/_emulator/ledger").status_code == 404
            change = {"email": "admin@example.com", "active": False}
            assert c.post(f"{base}/_emulator/users", json=change).status_code == 404
    finally:
        p.terminate()
        assert p.wait(10) == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_control_api_is_refused_off_loopback(host: str) -> None:
    # Refused before anything is bound: the control API ends grants and deactivates users.
    with pytest.raises(UsageError, match="only on loopback"):
        serve(EmulatorOptions(host=host, port=0, control=True))


def test_config_file(tmp_path: Any) -> None:
    import subprocess

    from tests.conftest import WXTOKEN

    cfg = tmp_path / "emu.toml"
    cfg.write_text("""
[policy]
access_ttl = 20
refresh_ttl = 60
rotate = "always"

[[users]]
email = "boss@corp.example"
display_name = "Big Boss"
org_id = "11111111-2222-3333-4444-555555555555"

[[integrations]]
client_id = "Cconfigured"
client_secret = "s3cret"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["spark:kms"]
name = "Configured"
""")
    p = subprocess.Popen(
        [WXTOKEN, "emulator", "--port", "0", "--json", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(p.stdout.readline())  # type: ignore[union-attr]
        assert info["client_id"] == "Cconfigured"
        assert info["org_id"] == "11111111-2222-3333-4444-555555555555"
    finally:
        p.terminate()
        p.wait(10)
    cfg.write_text("[policy]\nrotate = 'sometimes'\n")
    bad = subprocess.run(
        [WXTOKEN, "emulator", "--config", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "rotate" in bad.stderr


def test_query_string_encoding_helper() -> None:
    assert urlencode({"a": "b c"}) == "a=b+c"


def test_accepted_sockets_get_tcp_nodelay() -> None:
    """asyncio (and so uvicorn) sets TCP_NODELAY only on sockets of a listener created with
    IPPROTO_TCP; without it, Nagle and delayed ACKs cost ~40 ms per keep-alive request."""
    listener = _bind("127.0.0.1", 0)
    port = listener.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        srv = await asyncio.start_server(on_connect, sock=listener)
        async with srv:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            w.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
