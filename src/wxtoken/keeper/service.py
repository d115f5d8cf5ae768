"""What the keeper serves locally: /healthz and /metrics over HTTP, and tokens over a socket.

HTTP binds 127.0.0.1 by default. The token socket is a Unix domain socket in a 0700 directory,
itself 0600, and checks the peer's uid (SO_PEERCRED) on every connection, so another local user
can neither reach it nor be served. It answers one JSON line per connection:

    -> {"profile": "recorder", "min_valid": 300}
    <- {"ok": true, "access_token": "...", "access_expires_at": 1735689600.0}
    <- {"ok": false, "exit_code": 4, "error": "one line, fix included"}
    -> {"ping": true}                        (is a keeper running? `wxtoken status` asks)
    <- {"ok": true, "pong": true}

It never serves refresh tokens or client secrets (P18).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._local import DEFAULT_MIN_VALID, keeper_alive
from ..errors import UnsafePermissions, UsageError, WxtokenError
from ..store.fs import check_private, ensure_private_dir

MAX_REQUEST = 4096


# --- metrics and health ------------------------------------------------------------------------


class MetricsServer:
    def __init__(
        self, host: str, port: int, metrics: Callable[[], bytes], healthy: Callable[[], bool]
    ):
        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    ok = healthy()
                    body = b"ok\n" if ok else b"scheduler stalled\n"
                    self._reply(200 if ok else 503, body, "text/plain")
                elif self.path == "/metrics":
                    self._reply(200, metrics(), "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self._server = Server((host, port), Handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port} for metrics ({exc.strerror})",
                fix="pick another --metrics-listen HOST:PORT (port 0: any free)",
            ) from None
        address = self._server.server_address
        self.address: tuple[str, int] = (str(address[0]), int(address[1]))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="wxtoken-metrics", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- token socket ------------------------------------------------------------------------------


def peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class TokenSocket:
    def __init__(self, path: Path, answer: Callable[[str | None, float], dict[str, Any]]):
        self.path = path
        ensure_private_dir(path.parent)
        if path.exists() or path.is_symlink():
            st = os.lstat(path)
            if not stat.S_ISSOCK(st.st_mode):
                raise UnsafePermissions(
                    f"{path} exists and is not a socket",
                    fix=f"move {path} aside or choose another --socket",
                )
            if keeper_alive(str(path)):
                raise UsageError(
                    f"another keeper is already serving {path}",
                    fix="stop it first, or give this one another --socket",
                )
            path.unlink()  # a socket left by a keeper that was killed
        owner = os.geteuid()

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self) -> None:
                if peer_uid(self.connection) != owner:
                    return  # another user: say nothing at all
                line = self.rfile.readline(MAX_REQUEST)
                try:
                    req = json.loads(line)
                    if req.get("ping") is True:
                        self.wfile.write(b'{"ok": true, "pong": true}\n')
                        return
                    profile = req.get("profile")
                    min_valid = float(req.get("min_valid", DEFAULT_MIN_VALID))
                    if profile is not None and not isinstance(profile, str):
                        raise ValueError("profile")
                except (ValueError, AttributeError, TypeError):
                    out: dict[str, Any] = {
                        "ok": False,
                        "exit_code": 2,
                        "error": "malformed request to the keeper socket",
                    }
                else:
                    out = answer(profile, min_valid)
                self.wfile.write(json.dumps(out).encode() + b"\n")

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        old = os.umask(0o177)  # the socket file is 0600 from the moment bind() creates it
        try:
            self._server = Server(str(path), Handler)
        finally:
            os.umask(old)
        check_private(path.parent, is_dir=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="wxtoken-socket", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def error_answer(exc: WxtokenError) -> dict[str, Any]:
    return {"ok": False, "exit_code": exc.exit_code, "error": exc.one_line()}
