"""One socket to one origin: opening it within a budget, and blocking on it only as allowed.

A `Connection` serves one exchange at a time. Before every send and every receive it asks the
exchange's `Budget` how long it may block and sets that as the socket timeout, so the deadline
holds whatever the server does. Name resolution is bounded too: getaddrinfo has no timeout of its
own, so a host name (never an IP literal) is resolved on a helper thread that is abandoned when
the budget runs out.
"""

from __future__ import annotations

import io
import select
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

from .budget import Budget
from .errors import CONNECT

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


class Origin(NamedTuple):
    """Where a connection goes; the key of the connection pool."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Connection:
    __slots__ = ("budget", "idle_since", "origin", "sock")

    def __init__(self, sock: socket.socket, origin: Origin, budget: Budget):
        self.sock = sock
        self.origin = origin
        self.budget = budget  # the exchange currently using this connection
        self.idle_since = 0.0

    def send(self, data: bytes) -> None:
        budget = self.budget
        view = memoryview(data)
        while view:
            self.sock.settimeout(budget.allow(budget.write_timeout))
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                raise budget.expired() from None
            view = view[sent:]

    def recv_into(self, buffer: memoryview) -> int:
        budget = self.budget
        self.sock.settimeout(budget.allow(budget.read_timeout))
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError:
            raise budget.expired() from None

    def reader(self) -> io.BufferedReader:
        """A buffered file for one response (http.client closes it when the body ends)."""
        return io.BufferedReader(_SocketReader(self))

    def is_dropped(self) -> bool:
        """True if an idle connection has anything to read: EOF, a reset, or bytes nobody asked for.

        Either way it must not carry a request: the server closed it or is out of step with us.
        """
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        poller = select.poll()  # not select.select: it fails on descriptors above 1023
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self.sock.close()


class _SocketReader(io.RawIOBase):
    """The raw side of a response file: every refill of the buffer goes through the budget."""

    def __init__(self, conn: Connection):
        super().__init__()
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Closing this file (http.client does at the end of a body) leaves the socket open.
        return self._conn.recv_into(memoryview(buffer))


def connect_tcp(host: str, port: int, budget: Budget) -> socket.socket:
    """A connected TCP socket with Nagle off, trying each address the name resolves to."""
    budget.phase = CONNECT
    failure: Exception | None = None
    for family, kind, proto, _, address in resolve(host, port, budget):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(budget.allow(budget.connect_timeout))
            sock.connect(address)
            # A request written in two segments would otherwise wait for a delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except TimeoutError:
            sock.close()
            failure = budget.expired()  # the next address may answer (broken IPv6 route)
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            failure = exc
    raise failure or OSError(f"{host} has no address")


def resolve(host: str, port: int, budget: Budget) -> Sequence[AddrInfo]:
    try:  # an IP literal: no lookup, no thread
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    outcome: list[Sequence[AddrInfo] | OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="wxtoken-resolve", daemon=True).start()
    if not done.wait(budget.allow(budget.connect_timeout)):
        raise budget.expired()
    result = outcome[0]
    if isinstance(result, OSError):
        raise result
    return result
