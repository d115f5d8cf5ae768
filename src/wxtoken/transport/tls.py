"""TLS for the transport: the process-wide default context, and verification that stays on.

Loading a CA bundle costs about 15 ms per context, so the default context (trust.py: the OS
trust store, and the anchors the environment adds) is built once per process, on the first https
connection (a loopback http exchange never pays for it), and shared by every transport. A
context handed in by the caller is accepted only if it verifies the certificate chain and the
host name: a refresh token sent to an impostor is lost for 90 days.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading

from .budget import Budget
from .errors import TLS_HANDSHAKE
from .trust import Anchors, trusted_context

_lock = threading.Lock()
_default: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    """The OS trust store plus SSL_CERT_FILE / SSL_CERT_DIR (which only add), built once."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                env = os.environ
                _default = trusted_context(
                    Anchors(env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None)
                )
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
        require_verification(ctx)
        # The socket timeout bounds the whole handshake, not each record (CPython's _ssl). The
        # handshake runs inside wrap_socket: truststore checks the chain there, after it.
        sock.settimeout(budget.allow(budget.connect_timeout))
        try:
            return ctx.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            raise budget.expired() from None
    except BaseException:
        sock.close()
        raise
