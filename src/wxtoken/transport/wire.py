"""HTTP/1.1 on one connection: write an httpx2.Request, read the response head and body.

The response side is http.client's parser (status line, headers, Content-Length and chunked
framing, HEAD, 1xx, HTTP/1.0 peers, Connection: close) reading from a file whose every refill goes
through the exchange's budget. This module adds what http.client leaves to its callers: a body that
ends before its Content-Length is an error, and a connection goes back to the pool only when its
response was read to the end and neither side asked to close it.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import httpx2

from .budget import Budget
from .connection import Connection
from .errors import translate

CHUNK = 65536
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_is_token = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_unsafe_value = re.compile(rb"[\r\n\x00]").search  # would end the header line: injection
_unsafe_target = re.compile(rb"[\x00-\x20\x7f]").search


def failure(exc: Exception, budget: Budget, request: httpx2.Request) -> Exception:
    """The exception to raise for `exc`, with the request attached when it is a network failure."""
    mapped = translate(exc, budget.phase, budget.origin)
    if mapped is None:
        return exc
    mapped.request = request
    return mapped


@dataclass(slots=True)
class Outgoing:
    """A request as bytes, checked before any connection is taken for it."""

    data: bytes  # the head, and the body when it is in memory: one write, one segment
    stream: Iterable[bytes] | None  # a body still to be produced, sent as it comes
    chunked: bool
    close: bool  # the request asked for the connection to close after the response


def serialize(request: httpx2.Request) -> Outgoing:
    method = request.method.encode("ascii", "replace")
    target = request.url.raw_path
    if not _is_token(method) or _unsafe_target(target):
        raise httpx2.LocalProtocolError(
            "the request method or target is not valid HTTP", request=request
        )
    head = [method, b" ", target, b" HTTP/1.1\r\n"]
    has_host = framed = chunked = close = False
    for name, value in request.headers.raw:
        # Neither name nor value goes into the message: a header value may be a bearer token.
        if not _is_token(name) or _unsafe_value(value):
            raise httpx2.LocalProtocolError(
                "a request header has an invalid name or value", request=request
            )
        lower = name.lower()
        if lower == b"host":
            has_host = True
        elif lower == b"content-length":
            framed = True
        elif lower == b"transfer-encoding":
            framed, chunked = True, b"chunked" in value.lower()
        elif lower == b"connection":
            close = b"close" in value.lower()
        head += (name, b": ", value, b"\r\n")
    if not has_host:
        head += (b"Host: ", request.url.netloc, b"\r\n")
    try:
        body: bytes | None = request.content
    except httpx2.RequestNotRead:
        body = None
    if body is not None:
        if not framed and (body or request.method in _BODY_METHODS):
            head += (b"Content-Length: ", b"%d" % len(body), b"\r\n")
        head += (b"\r\n", _chunked(body) + b"0\r\n\r\n" if chunked else body)
        return Outgoing(b"".join(head), None, chunked, close)
    stream = request.stream
    if not isinstance(stream, Iterable):
        raise httpx2.LocalProtocolError(
            "an async request body cannot be sent by a sync transport", request=request
        )
    if not framed:
        head.append(b"Transfer-Encoding: chunked\r\n")
        chunked = True
    head.append(b"\r\n")
    return Outgoing(b"".join(head), stream, chunked, close)


def send(conn: Connection, out: Outgoing) -> None:
    conn.send(out.data)
    if out.stream is None:
        return
    for part in out.stream:
        if part:
            conn.send(_chunked(part) if out.chunked else part)
    if out.chunked:
        conn.send(b"0\r\n\r\n")


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


class _Wire:
    """What http.client.HTTPResponse needs of a socket: the file to read the response from."""

    __slots__ = ("file",)

    def __init__(self, file: io.BufferedReader):
        self.file = file

    def makefile(self, mode: str) -> io.BufferedReader:
        return self.file


def read_head(conn: Connection, method: str) -> http.client.HTTPResponse:
    """The final response's status line and headers.

    http.client skips only 100 Continue. Any other informational head (103 Early Hints, which
    CDNs send) returned as the answer would leave the real answer on the connection, to be read
    by the next request: so they are read and dropped here, from one shared buffered file.
    """
    wire = _Wire(conn.reader())
    while True:
        response = http.client.HTTPResponse(cast(socket.socket, wire), method=method)
        response.begin()
        if response.status >= 200:
            return response
        response.fp = None  # type: ignore[assignment]  # or dropping it would close the file
        if response.status == 101:  # we never ask to switch protocols
            raise httpx2.RemoteProtocolError(f"{conn.origin} switched protocols unasked")


def header_list(response: http.client.HTTPResponse) -> list[tuple[bytes, bytes]]:
    """Every header in order, repeats kept, as the bytes the server sent (latin-1 round trip)."""
    items = []
    for name, value in response.msg.items():
        text = str(value)
        if "\n" in text or "\r" in text:  # an obsolete folded header: one line, as RFC 9112 allows
            text = " ".join(part.strip() for part in text.splitlines())
        items.append((name.encode("latin-1"), text.encode("latin-1")))
    return items


class ResponseStream(httpx2.SyncByteStream):
    """The body, read lazily so a caller can stop at its cap; the deadline holds on every read.

    Read to the end, the connection goes back to the pool (if both sides keep it alive); closed
    earlier, or after any error, the connection is closed: a half-read body would be read as the
    next response.
    """

    def __init__(
        self,
        conn: Connection,
        response: http.client.HTTPResponse,
        request: httpx2.Request,
        keep_alive: bool,
        release: Callable[[Connection], None],
    ):
        self._conn: Connection | None = conn
        self._response = response
        self._request = request
        self._keep_alive = keep_alive
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        response, budget = self._response, conn.budget
        try:
            while True:
                budget.check()  # bytes already buffered need no system call, and no allowance
                chunk = response.read1(CHUNK)
                if not chunk:
                    break
                yield chunk
            if response.length:  # read1 reports a premature EOF as the end: it is not
                raise http.client.IncompleteRead(b"")
        except Exception as exc:
            self.close()
            raise failure(exc, budget, self._request) from None
        self._conn = None
        response.close()
        if self._keep_alive and not response.will_close:
            self._release(conn)
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._response.close()
            conn.close()
