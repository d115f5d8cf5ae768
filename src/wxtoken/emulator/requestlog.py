"""The emulator's request log: one line per request on stderr, never a secret."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Reply
    from .routes import WireRequest
    from .state import Emulator


class RequestLog:
    """One line per request on `out`: time, method, path, status, client id and outcome.

    Everything shown comes from the path (Webex's paths hold no secrets; the query string,
    headers and body are never read here) and from the ledger entry the request added, which
    holds fingerprints, never secrets. A client id is shown only if it is registered, and
    shortened: an unknown one is whatever the client sent, perhaps a secret pasted in the
    wrong field. Each line is one write, so lines from concurrent requests never interleave.
    """

    SHORT = 13  # "C" + 12 hex digits tells integrations apart

    def __init__(self, emu: Emulator, out: IO[str]) -> None:
        self._emu = emu
        self._out = out
        # The log must not slow the emulator down: the time of day is formatted once a
        # second, and each distinct outcome once (a bounded number: grant_type is the client's).
        self._second = -1
        self._stamp = ""
        self._outcomes: dict[tuple[Any, ...], str] = {}

    def __call__(self, request: WireRequest, reply: Reply, entry: Mapping[str, Any] | None) -> None:
        path = request.path
        if len(path) > 120 or not path.isascii() or not path.isprintable() or " " in path:
            path = repr(path[:120])  # a client's own path: escaped, so one request is one line
        client, outcome = "-", "-"
        if entry is not None:
            client = self._client(entry.get("client_id"))
            outcome = self._outcome(entry)
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime("%H:%M:%S", time.localtime(now))
        self._out.write(
            f"{self._stamp} {request.method} {path} {reply.status} client={client} {outcome}\n"
        )

    def _outcome(self, entry: Mapping[str, Any]) -> str:
        key = tuple(entry.get(k) for k in _OUTCOME_FIELDS)
        shown = self._outcomes.get(key)
        if shown is None:
            shown = _outcome(entry)
            if len(self._outcomes) < 1024:
                self._outcomes[key] = shown
        return shown

    def _client(self, client_id: object) -> str:
        if not isinstance(client_id, str) or not client_id:
            return "-"
        emu = self._emu
        known = client_id in emu.integrations or any(
            a.client_id == client_id for a in emu.service_apps.values()
        )
        if not known:
            return "unknown"
        return client_id if len(client_id) <= self.SHORT + 3 else client_id[: self.SHORT] + "…"


_OUTCOME_FIELDS = ("grant_type", "fault", "error", "outcome", "cause")


def _outcome(entry: Mapping[str, Any]) -> str:
    """What the ledger says happened: `grant=... outcome=... cause=...`."""
    parts = []
    if (grant := entry.get("grant_type")) is not None:
        parts.append(f"grant={_word(grant)}")
    if (fault := entry.get("fault")) is not None:
        parts.append(f"outcome=fault:{_word(fault)}")
    elif (error := entry.get("error")) is not None:
        parts.append(f"outcome={_word(error)}")
    else:
        parts.append(f"outcome={_word(entry.get('outcome', 'ok'))}")
    if (cause := entry.get("cause")) is not None:
        parts.append(f"cause={_word(cause)}")
    return " ".join(parts)


_WORD = re.compile(r"[\w:.\-]{1,60}", re.ASCII)


def _word(value: object) -> str:
    """A ledger value as one short printable word (grant_type is whatever the client sent)."""
    text = str(value)
    return text if _WORD.fullmatch(text) else "?"
