"""The emulator over HTTP: a thin Starlette adapter from ASGI requests to `router.Router`.

Every path goes to the router, which answers exactly as the in-process transport does; this
module only waits for `delay` faults with asyncio and carries out the wire faults on a real
connection: `drop` and `drop_after_commit` send the headers and a few bytes, then raise so the
server closes the socket; `trickle` streams one space per `delay` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .faults import TRICKLE_CHUNKS
from .model import Reply
from .router import Router
from .routes import WireRequest
from .state import Emulator

# Every method a client may send; the router answers 405 where a path does not take it.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class DropConnection(Exception):
    """Raised after the response started, so the server closes the socket mid-response."""


class _DropResponse(Response):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in self.reply.headers.items()
        ]
        await send({"type": "http.response.start", "status": self.reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.reply.body, "more_body": True})
        raise DropConnection("fault injected: connection dropped")


def _respond(reply: Reply) -> Response:
    wire = reply.wire
    if wire is None:
        return Response(reply.body, reply.status, reply.headers)
    if wire.kind == "trickle":
        pause = wire.delay or 1.0

        async def spaces() -> AsyncIterator[bytes]:
            for _ in range(TRICKLE_CHUNKS):
                yield b" "
                await asyncio.sleep(pause)

        return StreamingResponse(spaces(), reply.status, reply.headers)
    return _DropResponse(reply)


def _origin(scope: Scope, host: str | None) -> str:
    """scheme://host[:port] as the client addressed us (Starlette's rule for request.url)."""
    scheme = scope.get("scheme", "http")
    if host:
        return f"{scheme}://{host}"
    server_host, port = scope["server"]
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{server_host}" + ("" if port == default else f":{port}")


# Told of every answer: the request, the rendered reply, and the ledger entry the request
# added (None for routing's answers and the control API). server.py writes its request log
# from it; the entry holds fingerprints, never secrets.
OnReply = Callable[[WireRequest, Reply, Mapping[str, Any] | None], None]


def create_app(
    emu: Emulator, *, control: bool = False, on_reply: OnReply | None = None
) -> Starlette:
    """An ASGI app serving `emu` on Webex's paths (and the control API if `control`)."""
    router = Router(emu, control=control)

    async def handle(request: Request) -> Response:
        # Read from the ASGI scope directly: Starlette's URL and Headers objects cost more
        # than the rules of a refresh.
        scope = request.scope
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        wire = WireRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=await request.body(),
            base_url=_origin(scope, headers.get("host")),
        )
        exchange = router.open(wire)
        while (seconds := exchange.next_delay()) is not None:
            await asyncio.sleep(seconds)
        if on_reply is None:
            return _respond(exchange.finish())
        # finish() runs without awaiting, so on this event loop no other request adds to the
        # ledger in between: a changed total means the last entry is this request's.
        before = emu.ledger_total
        reply = exchange.finish()
        entry = emu.ledger[-1] if emu.ledger_total != before and emu.ledger else None
        on_reply(wire, reply, entry)
        return _respond(reply)

    return Starlette(routes=[Route("/{path:path}", handle, methods=METHODS)])
