"""A CONNECT tunnel through an HTTP proxy, inside the exchange's deadline.

The proxy's answer is read by this module, not by http.client: only its status line matters,
and nothing the proxy sends may be left unread on a socket that then carries TLS. Every failure
is raised as a `ProxyFailure` naming the proxy (never its credentials), so that a proxy's 403 or
407 is never read as Webex's own answer.
"""

from __future__ import annotations

import re
import socket

from .budget import Budget
from .connection import connect_tcp
from .errors import TUNNEL, ProxyAuthRequired, ProxyFailure, ProxyForbidden
from .proxy import Proxy

MAX_HEAD = 16384  # a CONNECT answer is a status line and a few headers
_STATUS = re.compile(rb"HTTP/1\.[01] ([0-9]{3})[ \t]?")


def open_tunnel(proxy: Proxy, host: str, port: int, budget: Budget) -> socket.socket:
    """A socket to the proxy on which host:port has been CONNECTed; TLS goes over it next."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        sock = connect_tcp(proxy.host, proxy.port, budget)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ProxyFailure(f"cannot connect to the proxy {proxy} ({reason})") from None
    try:
        budget.phase = TUNNEL
        head = [f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode("ascii")]
        auth = proxy.authorization()
        if auth is not None:
            head.append(b"Proxy-Authorization: " + auth + b"\r\n")
        _send(sock, b"".join(head) + b"\r\n", budget)
        status = _status(_read_head(sock, budget, proxy), proxy)
    except BaseException:
        sock.close()
        raise
    if 200 <= status < 300:
        return sock
    sock.close()
    if status == 407:
        if proxy.password:
            told = "refused the credentials it was given (407)"
        elif proxy.username is not None:
            told = "needs credentials (407), and no password was given for its user"
        else:
            told = "needs credentials (407)"
        raise ProxyAuthRequired(f"the proxy {proxy} {told}", status)
    if status == 403:
        raise ProxyForbidden(f"the proxy {proxy} refuses {host} (403)", status)
    raise ProxyFailure(f"the proxy {proxy} answered {status} when asked for {target}", status)


def _send(sock: socket.socket, data: bytes, budget: Budget) -> None:
    view = memoryview(data)
    while view:
        sock.settimeout(budget.allow(budget.write_timeout))
        try:
            view = view[sock.send(view) :]
        except TimeoutError:
            raise budget.expired() from None


def _read_head(sock: socket.socket, budget: Budget, proxy: Proxy) -> bytes:
    """Up to the blank line that ends the proxy's answer; bytes past it only on a refusal."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise ProxyFailure(f"the proxy {proxy} sent an answer to CONNECT that never ended")
        sock.settimeout(budget.allow(budget.read_timeout))
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            raise budget.expired() from None
        if not chunk:
            raise ProxyFailure(f"the proxy {proxy} closed the connection instead of a tunnel")
        data += chunk
    return data


def _status(head: bytes, proxy: Proxy) -> int:
    match = _STATUS.match(head)
    if match is None:
        raise ProxyFailure(f"the proxy {proxy} did not answer CONNECT in HTTP")
    status = int(match.group(1))
    # A tunnel carries the TLS handshake next: anything the proxy sent past its answer would be
    # read as the server's, so it is refused rather than skipped.
    if 200 <= status < 300 and not head.endswith(b"\r\n\r\n"):
        raise ProxyFailure(f"the proxy {proxy} sent data before the tunnel was used")
    return status
