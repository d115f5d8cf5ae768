"""Who may use the console, and what every answer carries: the access model in one place.

- A one-time start token (as Jupyter's): `/start?token=...` is the only URL that carries it; the
  first valid use sets an HttpOnly, SameSite=Strict session cookie and redirects to `/`, which
  drops the token from the address bar. The token is then spent.
- Without that session every page and action is refused (403), static files excepted.
- Every POST needs the session's CSRF token (a form field or the X-CSRF-Token header).
- The Host header must name a loopback address: a DNS-rebinding page at evil.example that
  resolves to 127.0.0.1 sends `Host: evil.example` and is refused before anything else.
- Every answer carries a strict Content-Security-Policy (no inline script or style),
  X-Frame-Options DENY, Referrer-Policy no-referrer and Cache-Control no-store.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
CSRF_FIELD = "csrf"
CSRF_HEADER = b"x-csrf-token"
MAX_FORM_BYTES = 64 * 1024  # a form here is a few fields; more is not ours

HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Session:
    """One admin's browser: its CSRF token, a one-shot notice, and the wizard's answers."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    notice: tuple[str, str, str] | None = None  # (kind, text, fix) shown once on the next page
    wizard: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return "Session(...)"


class Gate:
    """The start token, the sessions it opened, and the checks every request goes through."""

    def __init__(self) -> None:
        self._start_token: str | None = secrets.token_urlsafe(32)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.cookie_name = "wxtoken_console"

    def listening_on(self, port: int) -> None:
        """Cookies are per host, not per port: two consoles on one machine need two names."""
        self.cookie_name = f"wxtoken_console_{port}"

    def __repr__(self) -> str:
        return f"Gate(sessions={len(self._sessions)})"

    def start_url(self, base: str) -> str:
        """The one URL the admin opens; it carries the token (printed once, on stderr)."""
        assert self._start_token is not None
        return f"{base}/start?token={self._start_token}"

    def redeem(self, token: str) -> str | None:
        """A new session id for the valid, unspent start token; None otherwise."""
        with self._lock:
            expected = self._start_token
            if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
                return None
            self._start_token = None
            sid = secrets.token_urlsafe(32)
            self._sessions[sid] = Session()
            return sid

    def session(self, scope: Scope) -> Session | None:
        sid = cookies(scope).get(self.cookie_name)
        if not sid:
            return None
        with self._lock:
            for known, session in self._sessions.items():
                if hmac.compare_digest(known.encode(), sid.encode()):
                    return session
        return None

    def cookie(self, sid: str) -> str:
        return f"{self.cookie_name}={sid}; Path=/; HttpOnly; SameSite=Strict"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def cookies(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in (header(scope, b"cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            found[name] = value
    return found


def host_is_loopback(scope: Scope) -> bool:
    """Whether the Host header names a loopback address (any port: an SSH tunnel may use
    another local port than the console's)."""
    host = (header(scope, b"host") or "").strip().lower()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    return name in LOOPBACK_NAMES


def parse_form(body: bytes) -> dict[str, str]:
    """An urlencoded form body: the last value of each field."""
    pairs = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in pairs.items()}


def csrf_ok(session: Session, scope: Scope, form: dict[str, str]) -> bool:
    given = header(scope, CSRF_HEADER) or form.get(CSRF_FIELD, "")
    return bool(given) and hmac.compare_digest(given.encode(), session.csrf.encode())


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if it is larger than any form of ours."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


REFUSED_NO_SESSION = (
    "wxtoken console: no session. Open the one-time URL that `wxtoken console` printed when it "
    "started (it works once); for a new one, stop the console and start it again."
)


class Guard:
    """ASGI middleware: the Host check, the start token, the session and CSRF checks, and the
    security headers on every answer. The form body it read is handed on in
    scope["state"]["form"], so a handler never reads the body a second time."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not host_is_loopback(scope):
            await plain(send, 421, "wxtoken console answers loopback names only.", [])
            return
        path = scope.get("path", "")
        if path == "/start":
            await self._start(scope, send)
            return
        session = self.gate.session(scope)
        method = scope.get("method")
        public = path.startswith("/static/") and method in ("GET", "HEAD")
        if session is None and not public:
            await plain(send, 403, REFUSED_NO_SESSION, [])
            return
        scope.setdefault("state", {})
        scope["state"]["session"] = session
        if method not in ("GET", "HEAD"):
            assert session is not None
            body = await read_body(receive)
            if body is None:
                await plain(send, 413, "wxtoken console: request too large.", [])
                return
            form = parse_form(body)
            if not csrf_ok(session, scope, form):
                await plain(send, 403, "wxtoken console: missing or wrong CSRF token.", [])
                return
            scope["state"]["form"] = form
        await self.app(scope, receive, _with_headers(send))

    async def _start(self, scope: Scope, send: Send) -> None:
        token = parse_qs(bytes(scope.get("query_string", b"")).decode()).get("token", [""])[-1]
        sid = self.gate.redeem(token)
        if sid is None:
            await plain(send, 403, REFUSED_NO_SESSION, [])
            return
        extra = [(b"location", b"/"), (b"set-cookie", self.gate.cookie(sid).encode())]
        await plain(send, 303, "Signed in to the console.", extra)


def _with_headers(send: Send) -> Send:
    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            # Ours win over whatever a route or StaticFiles set under the same names.
            ours = {name for name, _ in HEADERS}
            kept = [(k, v) for k, v in message.get("headers", []) if bytes(k).lower() not in ours]
            message["headers"] = [*kept, *HEADERS]
        await send(message)

    return wrapped
