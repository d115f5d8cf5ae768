"""Getting an authorization code: a one-shot loopback listener, or a pasted redirect URL.

The listener follows RFC 8252 and the lessons in reliability.md (P11): it binds the IP literal
127.0.0.1 whatever the redirect URI's host name says, on exactly the registered port and path;
answers only GET on that path; ignores strays (favicon, wrong path, wrong state) and keeps
waiting; never logs the query (it holds the code); HTML-escapes anything it reflects; bounds
every connection with a timeout (slowloris) and the whole wait with a deadline; and closes the
port as soon as one valid callback arrived.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import IO, Any
from urllib.parse import urlsplit

from . import oauth
from .errors import OAuthError, StateMismatch, UsageError, WxtokenError
from .manager import TokenManager
from .profile import loopback_listen_target
from .results import LoginResult

DEFAULT_TIMEOUT = 600.0
CONNECTION_TIMEOUT = 5.0  # a client that sends no request line within this is dropped

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>wxtoken</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}}
</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"""


@dataclass
class _Outcome:
    code: str | None = None
    error: WxtokenError | None = None


class CallbackListener:
    """Listen on 127.0.0.1:port for one valid callback carrying `state`."""

    def __init__(self, port: int, path: str, state: str):
        self.port = port
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
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True  # Linux: still refuses a port another socket listens on

        try:
            self._server = Server(("127.0.0.1", self.port), self._handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{self.port} for the sign-in redirect "
                f"({exc.strerror}); another program is using the port",
                fix="stop that program, or use `wxtoken login --paste`",
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="wxtoken-callback",
            daemon=True,
        )
        self._thread.start()

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
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _open_browser(url: str, err: IO[str]) -> None:
    """Open the system browser (honours BROWSER) without blocking the listener."""

    def run() -> None:
        try:
            if not webbrowser.open(url):
                err.write("wxtoken: no browser could be started; open the address above by hand\n")
        except Exception:  # a broken BROWSER setting must not end the login
            err.write("wxtoken: the browser could not be started; open the address above\n")

    threading.Thread(target=run, name="wxtoken-browser", daemon=True).start()


def read_pasted(prompt: str, stdin: IO[str], err: IO[str]) -> str:
    """One line from a terminal (not echoed) or from a pipe."""
    if stdin.isatty():
        import getpass

        return getpass.getpass(prompt, stream=err)  # type: ignore[arg-type]
    err.write(prompt)
    err.flush()
    return stdin.readline()


def run_login(
    manager: TokenManager,
    *,
    open_browser: bool,
    paste: bool,
    timeout: float,
    stdin: IO[str] = sys.stdin,
    err: IO[str] = sys.stderr,
) -> LoginResult:
    profile = manager.profile
    request = oauth.prepare_authorization_request(
        profile.base_url, profile.client_id, profile.redirect_uri, profile.scopes
    )
    target = None if paste else loopback_listen_target(profile.redirect_uri)
    listener = None
    if target is not None:
        listener = CallbackListener(target[0], target[1], request.state)
        listener.start()
    err.write(
        f"Sign in to Webex as an administrator for profile {profile.name!r}:\n\n  {request.url}\n\n"
    )
    if open_browser:
        _open_browser(request.url, err)
    if listener is not None:
        err.write(f"Waiting up to {timeout:g} s for the redirect to {profile.redirect_uri} ...\n")
        err.flush()
        code = listener.wait(timeout)
        via = "loopback"
    else:
        err.write(f"After signing in, the browser goes to {profile.redirect_uri}?code=...\n")
        started = time.monotonic()
        text = read_pasted("Paste that whole address (or only the code): ", stdin, err)
        if time.monotonic() - started > timeout:
            raise OAuthError(
                f"the paste took longer than {timeout:g} s; the code has likely expired",
                fix="run `wxtoken login --paste` again and paste promptly",
            )
        code = oauth.parse_pasted(text, profile.redirect_uri, request.state)
        via = "paste"
    err.write("Exchanging the code for tokens ...\n")
    return manager.exchange_code(code, code_verifier=request.code_verifier, via=via)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
