"""The emulator in process: an httpx2 transport over the same router the HTTP server uses.

    emu = Emulator(clock=ManualClock(1_800_000_000))
    seed = emu.seed_default(["http://127.0.0.1:8765/callback"])
    http = httpx2.Client(transport=EmulatorTransport(emu), base_url="http://127.0.0.1:1")

The host and port of the request URL are ignored (documents that name the emulator's own URL,
such as discovery and the device verification URI, echo them). Every answer is the router's,
byte for byte what the subprocess server sends (dated by the emulator's clock, as the router
dates every answer), with the header uvicorn adds (`server`). Where the server's connection
does something, the transport does the closest thing a client can observe in process:

- `delay`: waits with `sleep` (default `time.sleep`; pass one that advances a ManualClock to
  keep tests instant), then handles the request. If the wait exceeds the request's read
  timeout, it waits the read timeout, handles the request anyway (the server handles it once
  its own wait ends; only the order against a retry sent meanwhile differs), then raises
  `httpx2.ReadTimeout`, as a client whose timeout fired would see.
- `drop`: the status line, headers and the first bytes of the body arrive, then reading the
  body raises `httpx2.RemoteProtocolError`, as when a server closes mid-body. The rules never ran.
- `drop_after_commit`: the same, after the rules ran and their effects were saved.
- `trickle`: a 200 whose body yields one space, then one more after each `delay` seconds (via
  `sleep`), up to the server's count; if `delay` exceeds the request's read timeout, the
  second read waits the read timeout and raises `httpx2.ReadTimeout`.

An exception inside the rules propagates to the caller (the server would answer 500): a bug in
the emulator should fail the test that met it, loudly.
"""

from __future__ import annotations

import http
import time
from collections.abc import Callable, Iterator

import httpx2

from .faults import DROPPED_LENGTH, TRICKLE_CHUNKS
from .model import Reply
from .router import Router
from .routes import WireRequest
from .state import Emulator


class EmulatorTransport(httpx2.BaseTransport):
    """`httpx2.Client(transport=EmulatorTransport(emu))`; `control=True` adds `/_emulator/`."""

    def __init__(
        self,
        emu: Emulator,
        *,
        control: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.emu = emu
        self._router = Router(emu, control=control)
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"EmulatorTransport({self.emu!r})"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        url = request.url
        headers: dict[str, str] = {}
        for name, value in request.headers.multi_items():
            headers.setdefault(name.lower(), value)
        exchange = self._router.open(
            WireRequest(
                method=request.method,
                path=url.path,
                query=url.query.decode("ascii"),
                headers=headers,
                body=body,
                base_url=f"{url.scheme}://{url.netloc.decode('ascii')}",
            )
        )
        read_timeout = _read_timeout(request)
        waited = 0.0
        while (seconds := exchange.next_delay()) is not None:
            if read_timeout is not None and waited + seconds > read_timeout:
                self._sleep(read_timeout - waited)
                exchange.finish()
                raise httpx2.ReadTimeout("timed out", request=request)
            self._sleep(seconds)
            waited += seconds
        reply = exchange.finish()
        return httpx2.Response(
            reply.status,
            headers=self._headers(reply),
            stream=_Stream(self._chunks(reply, request)),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": _phrase(reply.status),
            },
        )

    def _headers(self, reply: Reply) -> list[tuple[str, str]]:
        headers = [("server", "uvicorn"), *reply.headers.items()]
        if reply.wire is not None and reply.wire.kind == "trickle":
            headers.append(("transfer-encoding", "chunked"))
        return headers

    def _chunks(self, reply: Reply, request: httpx2.Request) -> Iterator[bytes]:
        body = reply.body if isinstance(reply.body, bytes) else b""
        wire = reply.wire
        if wire is None:
            if body:
                yield body
            return
        if wire.kind == "trickle":
            pause, read_timeout = wire.delay or 1.0, _read_timeout(request)
            for n in range(TRICKLE_CHUNKS):
                if n:
                    if read_timeout is not None and pause > read_timeout:
                        self._sleep(read_timeout)
                        raise httpx2.ReadTimeout("timed out", request=request)
                    self._sleep(pause)
                yield b" "
            return
        yield body
        raise httpx2.RemoteProtocolError(
            "peer closed connection without sending complete message body "
            f"(received {len(body)} bytes, expected {DROPPED_LENGTH})",
            request=request,
        )


class _Stream(httpx2.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _phrase(status: int) -> bytes:
    # As uvicorn's status line: the standard phrase, or none for a code without one.
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _read_timeout(request: httpx2.Request) -> float | None:
    timeout = request.extensions.get("timeout", {})
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None
