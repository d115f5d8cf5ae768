"""TLS for the transport: the process-wide default context, and verification that stays on.

Loading a CA bundle costs about 15 ms per context, so the default context is built once per process,
on the first https connection (a loopback http exchange never pays for it), and shared by every
transport. A context handed in by the caller is accepted only if it verifies the certificate chain
and the host name: a refresh token sent to an impostor is lost for 90 days.
"""

from __future__ import annotations

import socket
import ssl
import threading

from .budget import Budget
from .errors import TLS_HANDSHAKE

_lock = threading.Lock()
_default: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured), built once."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                ctx = ssl.create_default_context()
                ctx.set_alpn_protocols(["http/1.1"])
                _default = ctx
    return _default


def require_verification(ctx: ssl.SSLContext) -> ssl.SSLContext:
    if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
        raise ValueError(
            "TLS verification cannot be turned off: the SSLContext must have "
            "verify_mode=CERT_REQUIRED and check_hostname=True"
        )
    return ctx


def handshake(sock: socket.socket, host: str, ctx: ssl.SSLContext, budget: Budget) -> ssl.SSLSocket:
    """TLS over a connected socket, checked against `host`; closes the socket if it fails."""
    budget.phase = TLS_HANDSHAKE
    try:
        # Checked per connection, not only at construction: the context is the caller's object.
        tls = require_verification(ctx).wrap_socket(
            sock, server_hostname=host, do_handshake_on_connect=False
        )
    except BaseException:
        sock.close()
        raise
    try:
        # The socket timeout bounds the whole handshake, not each record (CPython's _ssl).
        tls.settimeout(budget.allow(budget.connect_timeout))
        try:
            tls.do_handshake()
        except TimeoutError:
            raise budget.expired() from None
    except BaseException:
        tls.close()
        raise
    return tls
