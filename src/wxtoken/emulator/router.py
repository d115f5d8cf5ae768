"""One dispatch for every front end: a plain request in, a rendered `Reply` out.

The HTTP app (app.py) and the in-process transport (transport.py) both call `Router`, so a
client sees the same status, headers and bytes either way: routing (including Starlette's 404,
405 and trailing-slash redirect), the TrackingID echo, Webex's error envelope, faults, saving
the state file and the control API all happen here. A request is served in two steps so each
front end can wait its own way between them:

    exchange = router.open(request)
    while (seconds := exchange.next_delay()) is not None:
        wait(seconds)                 # a `delay` fault; asyncio.sleep or time.sleep
    reply = exchange.finish()         # body is bytes, headers complete; reply.wire may be set
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.utils import formatdate
from urllib.parse import quote

from .faults import dropped, fault_reply, ledger_status
from .model import Fault, Reply
from .routes import API_ROUTES, CONTROL_ROUTES, PLAIN, Call, Route, WireRequest, reads
from .state import Emulator


def render(reply: Reply, tracking: str | None, *, head: bool = False) -> Reply:
    """Bytes and complete headers, as Starlette would send them (names lower-case)."""
    headers = {k.lower(): v for k, v in reply.headers.items()}
    if tracking is not None:
        headers["trackingid"] = tracking
    body = reply.body
    ctype: str | None = "application/json"
    if isinstance(body, dict | list):
        data = json.dumps(
            body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")
    elif isinstance(body, str):
        data, ctype = body.encode("utf-8"), "text/html; charset=utf-8"
    elif isinstance(body, bytes):
        data = body
    else:
        data, ctype = b"", None
    # A streamed (trickle) answer has no length; none is sent for 1xx, 204 and 304 either.
    streamed = reply.wire is not None and reply.wire.kind == "trickle"
    if not streamed and not (reply.status < 200 or reply.status in (204, 304)):
        headers.setdefault("content-length", str(len(data)))
    if ctype is not None:
        headers.setdefault("content-type", ctype)
    return Reply(reply.status, b"" if head else data, headers, reply.wire)


class Exchange:
    """One request between `Router.open` and `finish`; see the module docstring."""

    def __init__(
        self,
        emu: Emulator,
        request: WireRequest,
        route: Route | None,
        params: dict[str, str],
        early: Reply | None,
    ) -> None:
        self._emu = emu
        self._request = request
        self._route = route
        self._params = params
        self._early = early  # routing's own answer (404, 405, redirect) when there is no route
        # Faults, the ledger and TrackingID belong to Webex's endpoints, not the control API.
        self._endpoint = None if route is None else route.endpoint
        self._fault: Fault | None = None
        self._faults_taken = self._endpoint is None
        self.tracking = ""
        if self._endpoint is not None:
            self.tracking = emu.tracking_id(request.header("trackingid"))

    def next_delay(self) -> float | None:
        """Seconds to wait for the next armed `delay` fault, or None once there is none."""
        if self._faults_taken or self._endpoint is None:
            return None
        with self._emu.lock:
            fault = self._emu.take_fault(self._endpoint)
        if fault is not None and fault.kind == "delay":
            return fault.delay
        self._fault, self._faults_taken = fault, True
        return None

    def finish(self) -> Reply:
        """The answer, rendered and dated by the emulator's clock (a client comparing Webex's
        `Date` with its own sees the offset the clock was moved by)."""
        reply = self._finish()
        reply.headers["date"] = formatdate(self._emu.now(), usegmt=True)
        return reply

    def _finish(self) -> Reply:
        """The answer: a fault's, routing's, or the rules' (then saved); rendered."""
        head = self._request.method == "HEAD"
        if self._route is None:
            assert self._early is not None
            return render(self._early, None, head=head)
        while self.next_delay() is not None:
            pass  # a caller that does not wait skips the delay, not the faults behind it
        emu, route, fault = self._emu, self._route, self._fault
        with emu.lock:
            if fault is not None and fault.kind != "drop_after_commit":
                reply = fault_reply(emu, fault, self.tracking)
                emu.record(self._endpoint or "", ledger_status(reply), fault=fault.kind)
                return render(reply, self._tracking_for(reply), head=head)
            reply = route.handler(Call(emu, self._request, self._params, self.tracking))
            # Webex's endpoints save after every request that may change state; the control
            # API after every POST and DELETE.
            if route.mutates and (self._endpoint is not None or not reads(self._request.method)):
                emu.save()
            if fault is not None:
                # The rules ran and their effects are saved; only the answer is lost.
                emu.record(self._endpoint or "", 0, fault=fault.kind)
                reply = dropped(fault)
        return render(reply, self._tracking_for(reply), head=head)

    def _tracking_for(self, reply: Reply) -> str | None:
        # A cut connection sends no TrackingID (nor does the control API); a trickle does.
        cut = reply.wire is not None and reply.wire.kind != "trickle"
        return None if cut or self._endpoint is None else self.tracking


class Router:
    """Routes for one emulator; `control=True` adds the `/_emulator/` test API."""

    def __init__(self, emu: Emulator, *, control: bool = False) -> None:
        self.emu = emu
        self.routes = API_ROUTES + (CONTROL_ROUTES if control else ())

    def open(self, request: WireRequest) -> Exchange:
        partial: Route | None = None
        for route in self.routes:
            params = route.match(request.path)
            if params is None:
                continue
            if request.method in route.methods:
                return Exchange(self.emu, request, route, params, None)
            partial = partial or route
        if partial is not None:
            allow = {"allow": ", ".join(sorted(partial.methods))}
            early = Reply(405, b"Method Not Allowed", dict(allow, **{"content-type": PLAIN}))
        elif (target := self._slash_twin(request.path)) is not None:
            # Starlette's redirect_slashes: the same path with (or without) a trailing slash.
            url = request.base_url + target + (f"?{request.query}" if request.query else "")
            early = Reply(307, None, {"location": quote(url, safe=":/%#?=@[]!$&'()*+,;")})
        else:
            early = Reply(404, b"Not Found", {"content-type": PLAIN})
        return Exchange(self.emu, request, None, {}, early)

    def _slash_twin(self, path: str) -> str | None:
        if path == "/":
            return None
        twin = path.rstrip("/") if path.endswith("/") else path + "/"
        return twin if any(r.match(twin) is not None for r in self.routes) else None

    def dispatch(self, request: WireRequest, sleep: Callable[[float], None] = time.sleep) -> Reply:
        """Both steps at once, waiting with `sleep`."""
        exchange = self.open(request)
        while (seconds := exchange.next_delay()) is not None:
            sleep(seconds)
        return exchange.finish()
