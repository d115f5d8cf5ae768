"""The one-shot loopback listener that catches the sign-in redirect (RFC 8252).

It binds IP literals, never a name: 127.0.0.1, and for a `localhost` redirect URI [::1] as well,
because browsers send a `localhost` redirect to either address and another local user listening
on the one we left free would receive the code (RFC 8252 §8.3). It listens on exactly the
registered port and path; answers only GET on that path; ignores strays (favicon, wrong path,
wrong state) and keeps waiting; never logs the query (it holds the code); HTML-escapes anything
it reflects; bounds every connection with a timeout (slowloris) and the whole wait with a
deadline; and closes the port as soon as one valid callback arrived.
"""

from __future__ import annotations

import errno
import http.server
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

from .. import oauth
from ..errors import OAuthError, StateMismatch, UsageError, WxtokenError
from .portowner import holder

DEFAULT_TIMEOUT = 600.0
CONNECTION_TIMEOUT = 5.0  # a client that sends no request line within this is dropped

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>wxtoken</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}}
</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"""


@dataclass
class _Outcome:
    code: str | None = None
    error: WxtokenError | None = None


# An IPv6 loopback the host does not have (IPv6 disabled) cannot be squatted either, and no
# browser can reach it: listening on 127.0.0.1 alone is then enough.
_NO_SUCH_ADDRESS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def listen_addresses(redirect_uri: str) -> tuple[str, ...]:
    """The loopback addresses a redirect to `redirect_uri` can arrive on."""
    if (urlsplit(redirect_uri).hostname or "").lower() == "localhost":
        return ("127.0.0.1", "::1")
    return ("127.0.0.1",)


class CallbackListener:
    """Listen on `hosts` (loopback literals) at `port` for one valid callback carrying `state`."""

    def __init__(
        self, port: int, path: str, state: str, *, hosts: tuple[str, ...] = ("127.0.0.1",)
    ):
        self.port = port
        self.hosts = hosts
        self.path = path.rstrip("/") or "/"
        self._state = state
        self._done = threading.Event()
        self._outcome = _Outcome()
        self.strays = 0
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = CONNECTION_TIMEOUT
            server_version = "wxtoken"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries the code: never log it

            def _send(self, status: int, title: str, text: str) -> None:
                body = _PAGE.format(title=escape(title), text=escape(text)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                listener._handle(self)

            def _refuse(self) -> None:
                listener.strays += 1
                self._send(405, "Not here", "wxtoken only expects the sign-in redirect (GET).")

            do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_HEAD = _refuse

        self._handler = Handler
        self._servers: list[http.server.ThreadingHTTPServer] = []

    def _handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        send: Callable[[int, str, str], None] = req._send  # type: ignore[attr-defined]
        if self._done.is_set():
            send(410, "Already done", "This sign-in has finished; you can close this tab.")
            return
        parts = urlsplit(req.path)
        if (parts.path.rstrip("/") or "/") != self.path:
            self.strays += 1
            send(404, "Not found", "wxtoken is waiting for the Webex sign-in redirect.")
            return
        try:
            code = oauth.parse_authorization_response(parts.query, self._state)
        except StateMismatch:
            # Not our login (stale tab, forged link): say so and keep waiting (P11, LB-3).
            self.strays += 1
            send(
                400,
                "Not this sign-in",
                "This link does not belong to the sign-in wxtoken is waiting for. "
                "Use the browser tab wxtoken opened, or start again.",
            )
            return
        except WxtokenError as exc:
            self._outcome.error = exc
            send(400, "Sign-in did not complete", exc.message)
            self._done.set()
            return
        self._outcome.code = code
        send(
            200,
            "Signed in",
            "wxtoken received the authorization. You can close this tab "
            "and return to the terminal.",
        )
        self._done.set()

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

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(address, port) of every socket listening now."""
        return [(str(s.server_address[0]), int(s.server_address[1])) for s in self._servers]

    def _bind(self, host: str) -> http.server.ThreadingHTTPServer | None:
        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True
            allow_reuse_address = True  # Linux: still refuses a port another socket listens on

        try:
            return Server((host, self.port), self._handler)
        except OSError as exc:
            if host != self.hosts[0] and exc.errno in _NO_SUCH_ADDRESS:
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

    def wait(self, timeout: float) -> str:
        try:
            if not self._done.wait(timeout):
                raise OAuthError(
                    f"no sign-in redirect arrived within {timeout:g} s",
                    fix="run `wxtoken login` again (or `--timeout SECONDS` for more time)",
                )
            if self._outcome.error is not None:
                raise self._outcome.error
            assert self._outcome.code is not None
            return self._outcome.code
        finally:
            self.close()

    def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
