"""The one-shot loopback listener that catches the sign-in redirect (RFC 8252).

It binds IP literals, never a name: 127.0.0.1, and for a `localhost` redirect URI [::1] as well,
because browsers send a `localhost` redirect to either address and another local user listening
on the one we left free would receive the code (RFC 8252 §8.3). It listens on exactly the
registered port and path; answers only GET on that path; ignores strays (favicon, wrong path,
wrong state) and keeps waiting; never logs the query (it holds the code); HTML-escapes anything
it shows; bounds every connection with a timeout (slowloris) and the whole wait with a deadline.

The browser tab that delivered the code is answered last: it is held open until the caller
reports how the sign-in ended (`succeed` once the tokens are stored, or `fail`), so the page
never says "Signed in" while the exchange can still fail.
"""

from __future__ import annotations

import errno
import http.server
import socket
import threading
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

from .. import oauth
from ..errors import (
    EXIT_STORAGE,
    EXIT_UNAVAILABLE,
    OAuthError,
    StateMismatch,
    UsageError,
    WxtokenError,
)
from .portowner import holder

DEFAULT_TIMEOUT = 600.0
CONNECTION_TIMEOUT = 5.0  # a client that sends no request line within this is dropped
# The tab that delivered the code waits this long for the outcome: longer than an exchange, a
# who-am-I lookup and a store write can take, so it is only reached if the caller vanished.
VERDICT_TIMEOUT = 300.0

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>wxtoken</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}}
</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"""

# An IPv6 loopback the host does not have (IPv6 disabled) cannot be squatted either, and no
# browser can reach it: listening on 127.0.0.1 alone is then enough.
NO_SUCH_ADDRESS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def listen_addresses(redirect_uri: str) -> tuple[str, ...]:
    """The loopback addresses a redirect to `redirect_uri` can arrive on."""
    if (urlsplit(redirect_uri).hostname or "").lower() == "localhost":
        return ("127.0.0.1", "::1")
    return ("127.0.0.1",)


def timeout_error(timeout: float) -> OAuthError:
    """Nothing arrived: Webex shows its own errors in the browser, so list what to look at."""
    return OAuthError(
        f"no sign-in redirect arrived within {timeout:g} s. Likely causes: the redirect URI is "
        "not registered on the integration exactly as in the profile (Webex then shows its "
        "error in the browser, not here); the browser runs on another machine, whose "
        "127.0.0.1 is not this one; a firewall or proxy blocks loopback connections; or the "
        "sign-in was not finished",
        fix="check those, then run `wxtoken login -p {profile}` again (`--timeout SECONDS` "
        "for more time; `--paste` when the browser is elsewhere)",
    )


def failure_status(error: WxtokenError) -> int:
    """The HTTP status of the page that tells the browser a sign-in failed."""
    return {EXIT_UNAVAILABLE: 502, EXIT_STORAGE: 500}.get(error.exit_code, 400)


@dataclass(frozen=True)
class _Page:
    status: int
    title: str
    text: str


class CallbackListener:
    """Listen on `hosts` (loopback literals) at `port` for one valid callback carrying `state`."""

    def __init__(
        self, port: int, path: str, state: str, *, hosts: tuple[str, ...] = ("127.0.0.1",)
    ):
        self.port = port
        self.hosts = hosts
        self.path = path.rstrip("/") or "/"
        self.strays = 0
        self._state = state
        self._lock = threading.Lock()
        self._done = threading.Event()  # a callback decided the wait: a code, or an error
        self._code: str | None = None
        self._error: WxtokenError | None = None
        self._verdict: _Page | None = None
        self._decided = threading.Event()  # the caller said how the sign-in ended
        self._answered = threading.Event()  # ... and the waiting tab has been told
        self._servers: list[http.server.ThreadingHTTPServer] = []
        self._handler = self._handler_class()

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = CONNECTION_TIMEOUT
            server_version = "wxtoken"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries the code: never log it

            def send_page(self, page: _Page) -> None:
                body = _PAGE.format(title=escape(page.title), text=escape(page.text)).encode()
                self.send_response(page.status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                page, delivered_code = listener._handle(self.path)
                try:
                    self.send_page(page)
                finally:
                    if delivered_code:
                        listener._answered.set()

            def _refuse(self) -> None:
                listener.strays += 1
                self.send_page(
                    _Page(405, "Not here", "wxtoken only expects the sign-in redirect (GET).")
                )

            do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_HEAD = _refuse

        return Handler

    def _handle(self, target: str) -> tuple[_Page, bool]:
        """The page for one GET, and whether this request delivered the code."""
        parts = urlsplit(target)
        if (parts.path.rstrip("/") or "/") != self.path:
            self.strays += 1
            return _Page(
                404, "Not found", "wxtoken is waiting for the Webex sign-in redirect."
            ), False
        try:
            code = oauth.parse_authorization_response(parts.query, self._state)
        except StateMismatch:
            # Not our login (stale tab, forged link): say so and keep waiting.
            self.strays += 1
            return _Page(
                400,
                "Not this sign-in",
                "This link does not belong to the sign-in wxtoken is waiting for. "
                "Use the browser tab wxtoken opened, or start again.",
            ), False
        except WxtokenError as exc:
            with self._lock:
                if self._done.is_set():
                    return _already(), False
                self._error = exc
                self._done.set()
            return _Page(400, "Sign-in did not complete", exc.message), False
        with self._lock:
            if self._done.is_set():
                return _already(), False
            self._code = code
            self._done.set()
        return self._await_verdict(), True

    def _await_verdict(self) -> _Page:
        """Hold the tab that delivered the code until the caller says how the sign-in ended."""
        if not self._decided.wait(VERDICT_TIMEOUT):
            return _Page(504, "No answer", "wxtoken did not finish the sign-in; see the terminal.")
        assert self._verdict is not None
        return self._verdict

    def succeed(self, text: str) -> None:
        """Tell the waiting tab the sign-in is complete (call once the tokens are stored)."""
        self._decide(_Page(200, "Signed in", text))

    def fail(self, error: WxtokenError) -> None:
        """Tell the waiting tab the sign-in failed, and why (messages carry no secrets)."""
        self._decide(_Page(failure_status(error), "Sign-in failed", error.one_line()))

    def _decide(self, page: _Page) -> None:
        if self._decided.is_set():
            return
        self._verdict = page
        self._decided.set()
        if self._code is not None:
            self._answered.wait(CONNECTION_TIMEOUT)

    # --- sockets ---------------------------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(address, port) of every socket listening now."""
        return [(str(s.server_address[0]), int(s.server_address[1])) for s in self._servers]

    def start(self) -> None:
        """Bind every address, or none: a port held on one of them fails the whole login."""
        servers = []
        try:
            for host in self.hosts:
                server = self._bind(host)
                if server is not None:
                    servers.append(server)
        except BaseException:
            for server in servers:
                server.server_close()  # not serving yet: shutdown() would wait forever
            raise
        self._servers = servers
        for server in servers:
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="wxtoken-callback",
                daemon=True,
            ).start()

    def _bind(self, host: str) -> http.server.ThreadingHTTPServer | None:
        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True
            allow_reuse_address = True  # Linux: still refuses a port another socket listens on

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a tab closed mid-answer: nothing to tell the terminal about

        try:
            return Server((host, self.port), self._handler)
        except OSError as exc:
            if host != self.hosts[0] and exc.errno in NO_SUCH_ADDRESS:
                return None
            raise self._port_taken(host, exc) from None

    def _port_taken(self, host: str, exc: OSError) -> UsageError:
        where = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        who = holder(host, self.port)
        because = who.describe() if who else "another program is using the port"
        both = (
            f" (a localhost redirect URI needs both 127.0.0.1 and [::1] at port {self.port}: "
            "browsers use either)"
            if len(self.hosts) > 1
            else ""
        )
        if who is not None and who.is_other_user:
            # Another user's listener may be waiting for exactly this code: no workaround that
            # would still send the browser there.
            fix = "do not sign in until that program is gone; ask an administrator to stop it"
        else:
            fix = "stop that program, or use `wxtoken login --paste`"
        return UsageError(
            f"cannot listen on {where} for the sign-in redirect ({exc.strerror}); {because}{both}",
            fix=fix,
        )

    # --- waiting ---------------------------------------------------------------------------

    def wait(self, timeout: float) -> str:
        """The code of the one valid callback, or raise (the port is then closed).

        After a code, the port stays open until `succeed` or `fail` answered its tab; `close`
        (always call it) answers it with a failure if neither was called.
        """
        try:
            if not self._done.wait(timeout):
                raise timeout_error(timeout)
            if self._error is not None:
                raise self._error
        except BaseException:
            self.close()
            raise
        assert self._code is not None
        return self._code

    def close(self) -> None:
        if not self._decided.is_set():
            self._decide(_Page(500, "Sign-in failed", "wxtoken stopped; see the terminal."))
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()


def _already() -> _Page:
    return _Page(409, "Already received", "wxtoken already has this sign-in; see the terminal.")
