"""StdlibTransport: httpx2's transport interface on the standard library's http.client and ssl.

Why not httpx2's own transport: httpcore and h11 alone cost about twice the CPU of http.client per
token refresh, and their timeouts are per operation, so a server sending a byte a second holds a
refresh (and the profile's lock) indefinitely. Here every exchange has one deadline as well.
"""

from __future__ import annotations

import math
import socket
import ssl
import time
from collections.abc import Callable, Mapping

import httpx2

from .budget import Budget
from .connection import Connection, Origin, connect_tcp
from .errors import BODY, HEAD, SEND, CertificateRejected, ProxyFailure
from .pool import Pool
from .proxy import Proxy
from .tls import default_ssl_context, handshake, require_verification
from .trust import issuer_seen
from .tunnel import open_tunnel
from .wire import ResponseStream, failure, header_list, read_head, send, serialize

DEADLINE_EXTENSION = "wxtoken.deadline"
"""`request.extensions` key: an absolute deadline for this exchange, on the transport's clock
(`time.monotonic()` unless one was injected). It replaces the transport's default deadline."""

_DEFAULT_PORTS = {"http": 80, "https": 443}

ProxyRule = Callable[[Origin], Proxy | None]
"""Which proxy a connection to an origin goes through (None: directly); see proxy.choose."""


class StdlibTransport(httpx2.BaseTransport):
    """HTTP/1.1 over http.client with keep-alive pooling and a whole-exchange deadline.

    Use it directly (`handle_request`, the cheapest path) or as `httpx2.Client(transport=...)`.
    Timeouts: `connect_timeout`, `read_timeout` and `write_timeout` bound each blocking operation;
    `deadline` bounds the whole exchange, from connecting to the last body byte. An httpx2
    `timeout` extension on a request (httpx2.Client sets one) can only shorten the operation
    timeouts. Redirects are returned, never followed; a request is never sent twice.

    `open_socket` is the one place a connection is made: TCP (or a CONNECT tunnel through the
    proxy `proxy` names for the origin), then TLS for https with `ssl_context`, else the context
    `trust` builds, else the process default.
    """

    def __init__(
        self,
        *,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 30.0,
        write_timeout: float | None = 30.0,
        deadline: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        proxy: ProxyRule | None = None,
        trust: Callable[[], ssl.SSLContext] | None = None,
        max_idle_per_origin: int = 8,
        # Below the 5 s keep-alive timeout of common servers (uvicorn, Apache): we drop an idle
        # connection before the server does, instead of racing its close with a request.
        idle_expiry: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if deadline <= 0 or not math.isfinite(deadline):
            raise ValueError("the deadline must be a positive number of seconds")
        self._ssl_context = None if ssl_context is None else require_verification(ssl_context)
        self._proxy = proxy
        self._trust = trust  # the context for https when none is given, asked for on first use
        self._timeouts = (connect_timeout, read_timeout, write_timeout)
        self._deadline = deadline
        self._clock = clock
        self._pool = Pool(max_idle_per_origin, idle_expiry, clock)
        self._closed = False

    def __repr__(self) -> str:
        return f"StdlibTransport(deadline={self._deadline:g})"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._closed:
            raise RuntimeError("this transport has been closed")
        budget = self._budget(request)
        outgoing = serialize(request)
        try:
            budget.check()  # already late: fail before a pooled connection is spent on it
        except httpx2.TimeoutException as exc:
            exc.request = request
            raise
        conn = self._pool.take(budget.origin)
        try:
            if conn is None:
                conn = Connection(self.open_socket(budget.origin, budget), budget.origin, budget)
            else:
                conn.budget = budget
            budget.phase = SEND
            send(conn, outgoing)
            budget.phase = HEAD
            response = read_head(conn, request.method)
            headers = header_list(response)
        except Exception as exc:
            if conn is not None:
                conn.close()
            raise failure(exc, budget, request) from None
        budget.phase = BODY
        return httpx2.Response(
            response.status,
            headers=headers,
            stream=ResponseStream(conn, response, request, not outgoing.close, self._pool.give),
            request=request,
            extensions={
                "http_version": b"HTTP/1.0" if response.version == 10 else b"HTTP/1.1",
                "reason_phrase": response.reason.encode("latin-1", "replace"),
            },
        )

    def open_socket(self, origin: Origin, budget: Budget) -> socket.socket:
        """A connected socket to `origin` (an ssl.SSLSocket for https), within `budget`: directly,
        or through a CONNECT tunnel when the proxy rule names a proxy for it.

        Raises OSError, ssl.SSLError, an httpx2 timeout, ProxyFailure or CertificateRejected;
        the caller maps them for the user.
        """
        proxy = self._proxy(origin) if self._proxy is not None else None
        sock = self._connect(origin, proxy, budget)
        if origin.scheme == "http":
            return sock
        try:
            return handshake(sock, origin.host, self._context(), budget)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc.reason or "not trusted")
        issuer = None
        try:  # a second handshake, only to name the issuer in the message
            issuer = issuer_seen(self._connect(origin, proxy, budget), origin.host, budget)
        except Exception:  # noqa: S110 - the message says the issuer could not be read
            pass
        raise CertificateRejected(origin.host, reason, issuer)

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is not None:
            return self._ssl_context
        return self._trust() if self._trust is not None else default_ssl_context()

    def _connect(self, origin: Origin, proxy: Proxy | None, budget: Budget) -> socket.socket:
        if proxy is None:
            return connect_tcp(origin.host, origin.port, budget)
        try:
            return open_tunnel(proxy, origin.host, origin.port, budget)
        except httpx2.TimeoutException:
            raise ProxyFailure(
                f"the proxy {proxy} gave no tunnel to {origin.host}:{origin.port} in time "
                f"(timed out while {budget.phase})"
            ) from None

    def close(self) -> None:
        self._closed = True
        self._pool.close()

    def _budget(self, request: httpx2.Request) -> Budget:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx2.UnsupportedProtocol(
                f"the URL scheme must be http or https, not {scheme!r}", request=request
            )
        host = url.raw_host.decode("ascii")
        origin = Origin(scheme, host, url.port or _DEFAULT_PORTS[scheme])
        extensions = request.extensions
        deadline = extensions.get(DEADLINE_EXTENSION)
        if deadline is None:
            deadline = self._clock() + self._deadline
        elif (
            not isinstance(deadline, int | float)
            or isinstance(deadline, bool)
            or not math.isfinite(deadline)
        ):
            raise TypeError(f"request.extensions[{DEADLINE_EXTENSION!r}] must be a finite number")
        connect, read, write = self._timeouts
        timeout = extensions.get("timeout")
        if isinstance(timeout, Mapping):
            connect = _shorter(connect, timeout.get("connect"))
            read = _shorter(read, timeout.get("read"))
            write = _shorter(write, timeout.get("write"))
        return Budget(origin, float(deadline), self._clock, connect, read, write)


def _shorter(ours: float | None, theirs: object) -> float | None:
    if not isinstance(theirs, int | float) or isinstance(theirs, bool):
        return ours
    return float(theirs) if ours is None else min(ours, float(theirs))
