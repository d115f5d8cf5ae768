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
"""

from .budget import Budget
from .connection import Origin
from .errors import DeadlineExceeded
from .stdlib import DEADLINE_EXTENSION, StdlibTransport
from .tls import default_ssl_context

__all__ = [
    "DEADLINE_EXTENSION",
    "Budget",
    "DeadlineExceeded",
    "Origin",
    "StdlibTransport",
    "default_ssl_context",
]
