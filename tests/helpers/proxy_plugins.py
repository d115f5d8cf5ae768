"""proxy.py plugins for the proxy tests (loaded by the proxy process with --plugins).

`MapTestHosts` resolves every *.test name to 127.0.0.1, as a company's proxy resolves
webexapis.com for clients that cannot: wxtoken sends the name in CONNECT and never resolves it
itself, and a loopback host would not be proxied at all. `refused.test` is refused with 403, as
a proxy refuses a host its policy does not allow.
"""

from __future__ import annotations

from typing import Any

from proxy.http.exception import HttpRequestRejected
from proxy.http.proxy import HttpProxyBasePlugin

REFUSED = b"refused.test"


class MapTestHosts(HttpProxyBasePlugin):
    def resolve_dns(self, host: str, port: int) -> tuple[str | None, Any]:
        if host.endswith(".test"):
            return "127.0.0.1", None
        return None, None

    def before_upstream_connection(self, request: Any) -> Any:
        if request.host == REFUSED:
            raise HttpRequestRejected(status_code=403, reason=b"Forbidden")
        return request

    def handle_client_request(self, request: Any) -> Any:
        return request

    def handle_upstream_chunk(self, chunk: memoryview) -> memoryview:
        return chunk

    def on_upstream_connection_close(self) -> None:
        pass
