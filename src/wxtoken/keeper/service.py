"""What the keeper serves locally: /healthz and /metrics over HTTP, and tokens over a socket.

HTTP binds 127.0.0.1 by default. The token socket is a Unix domain socket in a 0700 directory,
itself 0600, and checks the peer's uid (SO_PEERCRED) on every connection, so another local user
can neither reach it nor be served. It answers one JSON line per connection (protocol.py parses
the request within fixed bounds):

    -> {"profile": "recorder", "min_valid": 300}
    <- {"ok": true, "access_token": "...", "access_expires_at": 1735689600.0}
    <- {"ok": false, "exit_code": 4, "error": "one line, fix included"}
    -> {"ping": true}                        (is a keeper running? `wxtoken status` asks)
    <- {"ok": true, "pong": true}

It never serves refresh tokens or client secrets. A peer that hangs up, stalls or sends garbage
holds one of `SOCKET_WORKERS` workers for at most `READ_TIMEOUT` and gets an error line or
silence: what a peer does never puts a traceback in the keeper's log.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import stat
import struct
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from .._local import MAX_SOCKET_PATH, keeper_alive
from ..errors import UnsafePermissions, UsageError, WxtokenError
from ..store.fs import check_private, ensure_private_dir
from .protocol import MAX_REQUEST, BadRequest, Ping, bad_request_answer, parse_request

# A local client sends its one line at once; one that has not within this time is stalled.
READ_TIMEOUT = 5.0
# Connections served at once, and how many more may wait; beyond that a connection is closed
# unanswered, so a flood costs a bounded number of threads (and their store connections).
SOCKET_WORKERS = 8
SOCKET_BACKLOG = 64


class QuietErrors:
    """A socketserver mixin: an exception escaping a handler is one log line, not a traceback.

    Handlers catch what a peer can cause; this is the backstop for anything else, so neither a
    peer nor a bug can fill the keeper's log with tracebacks (whose locals could hold secrets).
    """

    log: IO[str] = sys.stderr
    what = "server"

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # the peer hung up or stalled: nobody to tell, nothing to fix
        self.log.write(
            f"wxtoken keep: {self.what}: {type(exc).__name__} while serving a connection\n"
        )
        self.log.flush()


# --- metrics and health ------------------------------------------------------------------------


class MetricsServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Callable[[], bytes],
        healthy: Callable[[], bool],
        log: IO[str] = sys.stderr,
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

        class Server(QuietErrors, http.server.ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            what = "metrics"

        Server.log = log

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
    def __init__(
        self,
        path: Path,
        answer: Callable[[str | None, float], dict[str, Any]],
        log: IO[str] = sys.stderr,
        about: Mapping[str, str] | None = None,
    ):
        self.path = path
        # A ping's answer: alive, and what `wxtoken doctor` shows of this keeper (no secret).
        pong = json.dumps({"ok": True, "pong": True, **(about or {})}).encode() + b"\n"
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
            timeout = READ_TIMEOUT

            def handle(self) -> None:
                if peer_uid(self.connection) != owner:
                    return  # another user: say nothing at all
                try:
                    # One byte over the limit tells a long line from one that fits exactly.
                    line = self.rfile.readline(MAX_REQUEST + 1)
                except OSError:
                    return  # reset or stalled: there is nobody to answer
                if not line:
                    return  # connected and closed (a liveness probe): silence
                self._reply(line)

            def _reply(self, line: bytes) -> None:
                try:
                    request = parse_request(line)
                except BadRequest as exc:
                    out = json.dumps(bad_request_answer(exc)).encode() + b"\n"
                else:
                    if isinstance(request, Ping):
                        out = pong
                    else:
                        out = json.dumps(answer(request.profile, request.min_valid)).encode()
                        out += b"\n"
                try:
                    self.wfile.write(out)
                except OSError:
                    pass  # the peer hung up before reading its answer

        dispatch = self._dispatch

        class Server(QuietErrors, socketserver.UnixStreamServer):
            what = "token socket"
            request_queue_size = SOCKET_BACKLOG

            def process_request(self, request: Any, client_address: Any) -> None:
                dispatch(request, client_address)  # to a bounded pool, not a thread each

        Server.log = log
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise UsageError(
                f"the token socket path is {len(os.fsencode(path))} bytes long; a Unix socket "
                f"path may have at most {MAX_SOCKET_PATH}",
                fix="give a shorter one: --socket /run/wxtoken/keeper.sock (or WXTOKEN_SOCKET)",
            )
        old = os.umask(0o177)  # the socket file is 0600 from the moment bind() creates it
        try:
            self._server = Server(str(path), Handler)
        except OSError as exc:
            raise UsageError(
                f"cannot create the token socket {path} ({exc.strerror or exc})",
                fix="give another path with --socket (or WXTOKEN_SOCKET)",
            ) from None
        finally:
            os.umask(old)
        # Worker threads are reused, and with them their store connections; a connection waits
        # for a worker only while there is room, and is joined on stop, so an answer being
        # refreshed is stored first (bounded by the read timeout and the refresh's deadline).
        self._pool = ThreadPoolExecutor(SOCKET_WORKERS, thread_name_prefix="wxtoken-socket")
        self._slots = threading.BoundedSemaphore(SOCKET_WORKERS + SOCKET_BACKLOG)
        check_private(path.parent, is_dir=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="wxtoken-socket", daemon=True
        )

    def _dispatch(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._server.shutdown_request(request)  # flooded: silence, not another thread
            return
        try:
            self._pool.submit(self._serve, request, client_address)
        except RuntimeError:  # stopping: the pool takes no more work
            self._slots.release()
            self._server.shutdown_request(request)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self._server.finish_request(request, client_address)
        except Exception:
            self._server.handle_error(request, client_address)
        finally:
            self._server.shutdown_request(request)
            self._slots.release()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def error_answer(exc: WxtokenError) -> dict[str, Any]:
    return {"ok": False, "exit_code": exc.exit_code, "error": exc.one_line()}
