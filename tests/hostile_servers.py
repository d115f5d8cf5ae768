"""Real HTTP peers on 127.0.0.1 for transport tests: a well-behaved keep-alive server, hostile ones.

Each server is a listening socket with an accept thread and one thread per connection, running a
handler with the accepted connection. The server keeps, per connection, what the tests assert on:
how many connections were accepted, how many were open at once, how many requests each carried,
and whether the client closed it (EOF or reset seen by the server).
"""

from __future__ import annotations

import gzip
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names; the last one wins
    body: bytes


class Peer:
    """One accepted connection, as the server sees it."""

    def __init__(self, sock: socket.socket, index: int):
        self.sock = sock
        self.index = index
        self.requests = 0
        self.client_closed = threading.Event()  # the server read EOF or got a reset
        self.finished = threading.Event()  # the handler returned and the server closed its end
        self.milestone = threading.Event()  # a point a handler announces (what it means varies)
        self._buf = b""

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.client_closed.set()
            raise

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.client_closed.set()
            return False
        self._buf += data
        return True

    def _line(self) -> bytes | None:
        while b"\r\n" not in self._buf:
            if not self._fill():
                return None
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            if not self._fill():
                return None
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def read_request(self) -> Request | None:
        """The next request, or None once the client closed the connection."""
        line = self._line()
        if not line:
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (h := self._line()) is not None and h:
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while (size_line := self._line()) is not None:
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                parts.append(self._exactly(size) or b"")
                self._line()
            body = b"".join(parts)
        else:
            body = self._exactly(int(headers.get("content-length", "0"))) or b""
        self.requests += 1
        return Request(method, target, headers, body)

    def wait_closed(self, seconds: float) -> bool:
        """Wait up to `seconds` for the client to close; bytes it sends meanwhile are dropped."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                readable, _, _ = select.select([self.sock], [], [], left)
            except (OSError, ValueError):
                self.client_closed.set()
                return True
            if readable and not self._fill():
                return True
        return False


Handler = Callable[[Peer], None]


@dataclass
class Server:
    handler: Handler
    tls: ssl.SSLContext | None = None
    backlog: int = 64
    host: str = "127.0.0.1"  # or "::1"
    peers: list[Peer] = field(default_factory=list)
    open_now: int = 0
    max_open: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self.sock.bind((self.host, 0))
        self.sock.listen(self.backlog)
        self.port = int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def accepted(self) -> int:
        return len(self.peers)

    def start(self) -> Server:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                peer = Peer(sock, len(self.peers))
                self.peers.append(peer)
            threading.Thread(target=self._serve, args=(peer,), daemon=True).start()

    def _serve(self, peer: Peer) -> None:
        with self._lock:
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)
        try:
            if self.tls is not None:
                peer.sock = self.tls.wrap_socket(peer.sock, server_side=True)
            self.handler(peer)
        except (OSError, ValueError):
            peer.client_closed.set()
        finally:
            with self._lock:
                self.open_now -= 1
            peer.sock.close()
            peer.finished.set()

    def close(self) -> None:
        try:  # wakes the accept thread: a plain close leaves the socket listening until it returns
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for peer in list(self.peers):
            try:
                peer.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def serving(
    handler: Handler, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Iterator[Server]:
    server = Server(handler, tls, host=host).start()
    try:
        yield server
    finally:
        server.close()


# --- well-behaved ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] | None = None  # send chunked instead of with Content-Length
    version: str = "HTTP/1.1"
    length: bool = True  # False: no Content-Length, the body ends when the server closes
    close: bool = False  # close the connection after this response


def encode(reply: Reply, method: str) -> bytes:
    lines = [f"{reply.version} {reply.status} Reason\r\n"]
    lines += [f"{k}: {v}\r\n" for k, v in reply.headers]
    if reply.chunks is not None:
        lines.append("Transfer-Encoding: chunked\r\n")
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in reply.chunks if c)
        body += b"0\r\nX-Trailer: t\r\n\r\n"
    else:
        body = reply.body
        if reply.length:
            lines.append(f"Content-Length: {len(body)}\r\n")
    if reply.close:
        lines.append("Connection: close\r\n")
    return "".join(lines).encode("latin-1") + b"\r\n" + (b"" if method == "HEAD" else body)


def app(respond: Callable[[Request, Peer], Reply], keep_open: bool = False) -> Handler:
    """A keep-alive HTTP/1.1 server: one reply per request until either side closes.

    keep_open: a lax server that keeps the connection open even after announcing or being asked
    to close it, so only the client's own bookkeeping can stop it reusing the connection.
    """

    def handle(peer: Peer) -> None:
        while (req := peer.read_request()) is not None:
            reply = respond(req, peer)
            peer.send(encode(reply, req.method))
            closing = reply.close or not reply.length or req.headers.get("connection") == "close"
            if closing and not keep_open:
                return

    return handle


def echo(req: Request, peer: Peer) -> Reply:
    """Says back which connection and request this was, and what it carried."""
    body = f"{req.method} {req.target} conn={peer.index} n={peer.requests} len={len(req.body)}"
    return Reply(body=body.encode(), headers=[("X-Echo-Id", req.headers.get("x-id", ""))])


def gzipped(req: Request, peer: Peer) -> Reply:
    return Reply(body=gzip.compress(b"squeezed " * 1000), headers=[("Content-Encoding", "gzip")])


# --- hostile --------------------------------------------------------------------------------


def never_answers(peer: Peer) -> None:
    """Reads the request, then says nothing until the client gives up."""
    peer.read_request()
    peer.wait_closed(60)


def trickles_head(peer: Peer) -> None:
    """A status line, then one header line per second, forever."""
    peer.read_request()
    peer.send(b"HTTP/1.1 200 OK\r\n")
    n = 0
    while not peer.wait_closed(1.0):
        peer.send(b"X-Trickle-%d: x\r\n" % n)
        n += 1


def trickles_body(peer: Peer) -> None:
    """Headers at once, then the body one byte per second."""
    peer.read_request()
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    while not peer.wait_closed(1.0):
        peer.send(b"x")


def stalls_after_head(peer: Peer) -> None:
    peer.read_request()
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    peer.wait_closed(60)


def closes_mid_body(chunked: bool) -> Handler:
    def handle(peer: Peer) -> None:
        peer.read_request()
        if chunked:
            peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + b"x" * 10)
        else:
            peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)

    return handle


def closes_without_answer(peer: Peer) -> None:
    peer.read_request()


def echoes_request_as_status(peer: Peer) -> None:
    """A broken peer that sends the request back where the status line belongs."""
    req = peer.read_request()
    assert req is not None
    hdrs = "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
    peer.send(f"{req.method} {req.target}?{req.body.decode()} {hdrs}\r\n\r\n".encode())


def answers_then_sends_garbage(peer: Peer) -> None:
    """Answers a request, then writes bytes nobody asked for on the idle connection (milestone)."""
    while (req := peer.read_request()) is not None:
        peer.send(encode(echo(req, peer), req.method))
        time.sleep(0.05)
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
        peer.milestone.set()


def early_hints_first(peer: Peer) -> None:
    """Sends informational 103 (and 100) heads before each final answer, as some CDNs do."""
    while (req := peer.read_request()) is not None:
        peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" + encode(echo(req, peer), req.method))


def answers_once_then_closes(peer: Peer) -> None:
    """Answers one request as keep-alive, then closes the idle connection (a server's timeout)."""
    req = peer.read_request()
    assert req is not None
    peer.send(encode(echo(req, peer), req.method))


def answers_after(seconds: float) -> Handler:
    def handle(peer: Peer) -> None:
        while (req := peer.read_request()) is not None:
            time.sleep(seconds)
            peer.send(encode(echo(req, peer), req.method))

    return handle


def silent(peer: Peer) -> None:
    """Accepts the connection and never sends a byte (a TLS client waits for its handshake)."""
    peer.wait_closed(60)
