"""How the transport reports a failure: as httpx2's exception classes, in our own words.

A message names what went wrong, the phase of the exchange and the origin (scheme://host:port).
It never carries the request's path, query, headers or body, which hold client secrets, codes and
tokens, nor text the server sent: a broken or hostile server may echo the request back in its
status line, and that would put the secret into a log. Exceptions are raised `from None` for the
same reason (a chained http.client.BadStatusLine carries the line it read).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from .connection import Origin

# The phases of an exchange, in order. Messages say "while <phase>"; each has its timeout class.
CONNECT = "connecting"
TUNNEL = "asking the proxy for a tunnel"
TLS_HANDSHAKE = "doing the TLS handshake"
SEND = "sending the request"
HEAD = "reading the status line and headers"
BODY = "reading the body"

_TIMEOUT_CLASS: dict[str, type[httpx2.TimeoutException]] = {
    CONNECT: httpx2.ConnectTimeout,
    TUNNEL: httpx2.ConnectTimeout,
    TLS_HANDSHAKE: httpx2.ConnectTimeout,
    SEND: httpx2.WriteTimeout,
    HEAD: httpx2.ReadTimeout,
    BODY: httpx2.ReadTimeout,
}


class DeadlineExceeded(httpx2.TimeoutException):
    """The whole exchange (connect, TLS, send, status line, headers, body) ran past its deadline.

    Per-operation timeouts cannot catch a server that sends one byte a second; this can. The
    connection has been closed by the time it is raised.
    """


class ProxyFailure(httpx2.ProxyError):
    """The proxy did not give a tunnel: unreachable, too slow, or it answered CONNECT with an
    error (`status`). The message names the proxy, never its credentials."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ProxyAuthRequired(ProxyFailure):
    """407: the proxy wants credentials, or refused the ones it was given."""


class ProxyForbidden(ProxyFailure):
    """403 to CONNECT: the proxy does not let this host through."""


class CertificateRejected(httpx2.ConnectError):
    """The server's certificate did not verify against the trust anchors in use.

    `issuer` is who the presented certificate says issued it (read without trusting it, for
    the message only): a company's inspection CA there means a proxy is re-signing TLS.
    """

    def __init__(self, host: str, reason: str, issuer: str | None):
        seen = f"issued by {issuer!r}" if issuer else "its issuer could not be read"
        super().__init__(f"the TLS certificate of {host} was not accepted ({seen}: {reason})")
        self.host = host
        self.reason = reason
        self.issuer = issuer


def deadline_exceeded(phase: str, origin: Origin) -> DeadlineExceeded:
    return DeadlineExceeded(f"the whole-exchange deadline passed while {phase} ({origin})")


def timed_out(phase: str, origin: Origin, seconds: float) -> httpx2.TimeoutException:
    return _TIMEOUT_CLASS[phase](f"timed out after {seconds:g} s while {phase} ({origin})")


def translate(exc: Exception, phase: str, origin: Origin) -> httpx2.TransportError | None:
    """The httpx2 exception for a failure during `phase`; None for a bug, not a network fault."""
    if isinstance(exc, httpx2.TransportError):
        return exc
    if isinstance(exc, http.client.RemoteDisconnected):  # also a ConnectionResetError: first
        return httpx2.RemoteProtocolError(f"{origin} closed the connection without answering")
    if isinstance(exc, http.client.IncompleteRead):
        return httpx2.RemoteProtocolError(
            f"{origin} closed the connection before the response body was complete"
        )
    if isinstance(exc, http.client.HTTPException):  # bad status line, line too long, 100+ headers
        return httpx2.RemoteProtocolError(
            f"{origin} sent a response that is not valid HTTP/1.x ({type(exc).__name__})"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return httpx2.ConnectError(
            f"the TLS certificate of {origin} was not accepted: {exc.verify_message}"
        )
    if isinstance(exc, socket.gaierror):
        return httpx2.ConnectError(f"cannot resolve the host of {origin} ({exc.strerror})")
    if isinstance(exc, TimeoutError):
        return _TIMEOUT_CLASS[phase](f"timed out while {phase} ({origin})")
    if isinstance(exc, OSError):
        kind, reason = (
            ("TLS", exc.reason) if isinstance(exc, ssl.SSLError) else ("network", exc.strerror)
        )
        what = f"{kind} error while {phase} ({origin}: {reason or type(exc).__name__})"
        if phase in (CONNECT, TLS_HANDSHAKE):
            return httpx2.ConnectError(what)
        return httpx2.WriteError(what) if phase == SEND else httpx2.ReadError(what)
    return None
