"""The emulator in process, for tests: the same seed and control API as the subprocess emulator
(tests/conftest.py's `Emulator`), served through `EmulatorTransport` with a `ManualClock`.

`InProc` mirrors the subprocess helper's methods (`control`, `fault`, `policy`, `ledger`,
`mark`, `advance`, `info`, `client_id`, ...) so a rule test reads the same either way; only
time differs: it moves when the test says so, and `clock` can be handed to our own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2

from wxtoken.emulator import Emulator, EmulatorTransport, ManualClock
from wxtoken.emulator.server import EmulatorOptions, build

BASE_URL = "http://127.0.0.1:1"  # never dialled: the transport ignores host and port
REDIRECT_URI = "http://127.0.0.1:8765/callback"
POSTMAN_URI = "https://oauth.pstmn.io/v1/callback"
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z: any fixed instant will do


@dataclass
class InProc:
    emu: Emulator
    clock: ManualClock
    info: dict[str, Any] = field(repr=False)  # holds the seeded secrets
    redirect_uri: str
    base_url: str = BASE_URL
    clients: list[httpx2.Client] = field(default_factory=list)

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.info["client_secret"])

    def client(self, **kw: Any) -> httpx2.Client:
        """A client on this emulator (closed by `close`); keyword arguments go to httpx2."""
        kw.setdefault("follow_redirects", False)
        kw.setdefault("base_url", self.base_url)
        c = httpx2.Client(transport=EmulatorTransport(self.emu, control=True), **kw)
        self.clients.append(c)
        return c

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """The /_emulator/ API through the transport; a refusal raises httpx2.HTTPStatusError."""
        http = self.clients[0] if self.clients else self.client()
        r = http.request(method, f"/_emulator/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def fault(self, kind: str, endpoint: str = "access_token", **kw: Any) -> None:
        self.control("POST", "faults", dict(kw, kind=kind, endpoint=endpoint))

    def policy(self, **kw: Any) -> dict[str, Any]:
        return dict(self.control("POST", "policy", kw))

    def ledger(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.control("GET", f"ledger?since={since}")["entries"])

    def refreshes(self, since: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.ledger(since) if e.get("grant_type") == "refresh_token"]

    def mark(self) -> int:
        return self.emu.ledger_total

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def close(self) -> None:
        for c in self.clients:
            c.close()


def start_inproc(*, start: float = START, redirect_uri: str = REDIRECT_URI, **opts: Any) -> InProc:
    """An emulator built exactly as `wxtoken emulator --control --replace-redirect-uris
    --redirect-uri ...` builds it (`opts` are further EmulatorOptions), on a ManualClock at
    `start`."""
    clock = ManualClock(start)
    options = EmulatorOptions(
        control=True, redirect_uris=[redirect_uri, POSTMAN_URI], replace_redirect_uris=True, **opts
    )
    emu, seed = build(options, clock=clock)
    info = dict(seed, base_url=BASE_URL, control=True)
    return InProc(emu, clock, info, redirect_uri)


def inproc_fixture(**opts: Any) -> Iterator[InProc]:
    """Body of a test module's fixture: `yield from inproc_fixture()`."""
    e = start_inproc(**opts)
    try:
        yield e
    finally:
        e.close()
