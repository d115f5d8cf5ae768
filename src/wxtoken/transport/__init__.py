"""An HTTP/1.1 transport for httpx2 on the standard library, with a whole-exchange deadline.

    transport = StdlibTransport(deadline=60)
    response = transport.handle_request(httpx2.Request("POST", url, data=form))
    with httpx2.Client(transport=transport) as client: ...

Modules, in the order a request meets them: `stdlib` (the transport), `pool` (idle keep-alive
connections), `proxy` (which proxy, if any: curl's rules), `connection` (a socket opened and used
within a budget), `tunnel` (CONNECT through a proxy), `tls` and `trust` (the handshake, and the
anchors: the OS store plus those that only add), `wire` (HTTP/1.1 framing through http.client),
`budget` (timeouts under one deadline), `errors` (httpx2 exceptions with messages that never
carry the request).

The names below load on first use: `proxy` and `trust` are read by commands that only describe
the network (`status`), and must not pull in httpx2 for that.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .budget import Budget
    from .connection import Origin
    from .errors import DeadlineExceeded
    from .stdlib import DEADLINE_EXTENSION, StdlibTransport
    from .tls import default_ssl_context

_WHERE = {
    "Budget": "budget",
    "Origin": "connection",
    "DeadlineExceeded": "errors",
    "DEADLINE_EXTENSION": "stdlib",
    "StdlibTransport": "stdlib",
    "default_ssl_context": "tls",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)


__all__ = [
    "DEADLINE_EXTENSION",
    "Budget",
    "DeadlineExceeded",
    "Origin",
    "StdlibTransport",
    "default_ssl_context",
]
