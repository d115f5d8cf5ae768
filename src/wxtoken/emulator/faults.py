"""Injected faults: reading one from the control API, and the answer each kind gives instead.

Answer faults (status, html, malformed, truncated, incomplete, huge, redirect) replace the reply
and never reach the rules. Wire faults (drop, drop_after_commit, trickle) are replies that carry
`wire`: each front end then does to its connection what the kind says. `delay` is neither: the
front end waits, then the request goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import FAULT_KINDS, Fault, Reply

if TYPE_CHECKING:
    from .state import Emulator

DROPPED_BODY = b'{"access'  # the first bytes of a token answer, then the connection ends
DROPPED_LENGTH = 512  # what the headers promised
TRICKLE_CHUNKS = 1000  # one space each: a never-ending answer for any client's patience
HUGE_SIZE = 2 * 1024 * 1024  # past any sane body cap
GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
)


def parse_fault(body: Any) -> Fault | str:
    """A Fault from `POST /_emulator/faults` JSON, or what is wrong with it."""
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
        return "expected {endpoint, kind, count?, status?, retry_after?, delay?, error?}"
    kind = body["kind"]
    try:
        fault = Fault(
            endpoint=str(body.get("endpoint", "access_token")),
            kind=kind,
            count=int(body.get("count", 1)),
            status=int(body.get("status", 502 if kind == "html" else 503)),
            retry_after=None if body.get("retry_after") is None else str(body["retry_after"]),
            delay=float(body.get("delay", 0.0)),
            body=str(body.get("body", "envelope")),
            error=None if body.get("error") is None else str(body["error"]),
        )
    except (TypeError, ValueError) as exc:
        return str(exc)
    if fault.kind not in FAULT_KINDS:
        return f"kind must be one of {sorted(FAULT_KINDS)}"
    return fault


def fault_reply(emu: Emulator, fault: Fault, tracking: str) -> Reply:
    """What the endpoint answers instead of running its rules (TrackingID is added later)."""
    kind = fault.kind
    if kind == "status":
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        if fault.body == "empty":
            return Reply(fault.status, None, headers)
        if fault.error is not None:
            # An OAuth refusal Webex may give at any time (slow_down, authorization_pending).
            reply = emu.oauth_error(fault.error, "injected", tracking, status=fault.status)
            reply.headers.update(headers)
            return reply
        desc = {429: "Too many requests", 423: "Locked"}.get(fault.status, "Service unavailable")
        code = "temporarily_unavailable" if fault.status >= 500 else None
        return emu.error(fault.status, desc, desc, tracking, code, headers)
    if kind == "html":
        return Reply(fault.status or 502, GATEWAY_PAGE)
    if kind == "malformed":
        return Reply(200, b"{'access_token': nope,]")
    if kind == "incomplete":
        # Well-formed JSON without the access token: a gateway or a changed API.
        return Reply(200, {"token_type": "Bearer", "expires_in": 3600})
    if kind == "truncated":
        return Reply(200, b'{"access_token": "abc')
    if kind == "huge":
        return Reply(200, b" " * HUGE_SIZE + b"{}")
    if kind == "redirect":
        # A token endpoint that redirects: a client following it would replay the secret.
        location = fault.body if fault.body.startswith("http") else "http://127.0.0.1:9/"
        return Reply(
            fault.status if 300 <= fault.status < 400 else 307, None, {"location": location}
        )
    if kind == "trickle":
        return Reply(200, None, {"content-type": "application/json"}, wire=fault)
    return dropped(fault)


def dropped(fault: Fault) -> Reply:
    """Headers promising a token answer, a few bytes of it, then (by the front end) a close."""
    headers = {"content-type": "application/json", "content-length": str(DROPPED_LENGTH)}
    return Reply(200, DROPPED_BODY, headers, wire=fault)


def ledger_status(reply: Reply) -> int:
    """The status the ledger records for a fault: 0 when the connection is cut."""
    if reply.wire is not None and reply.wire.kind != "trickle":
        return 0
    return reply.status
