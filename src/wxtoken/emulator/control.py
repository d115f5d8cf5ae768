"""The test-only control API under `/_emulator/`: faults, clock, policy, revocation, users,
blocking, client secrets, the consent user, device approval, the ledger, messages and reset.

Served only when asked for, and by the HTTP server only on loopback. Answers are JSON without
a TrackingID; bad input is a 400 `{"ok": false, "error": ...}`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .causes import block as block_integration
from .causes import change_user, parse_user_change, user_json
from .clock import offset_of
from .device import device_decide
from .faults import parse_fault
from .model import OPTIONAL_POLICY_FIELDS, Reply

if TYPE_CHECKING:
    from .routes import Call


def ok(data: Any = None) -> Reply:
    return Reply(200, {"ok": True} if data is None else data)


def bad(msg: str) -> Reply:
    return Reply(400, {"ok": False, "error": msg})


def faults(call: Call) -> Reply:
    emu, method = call.emu, call.request.method
    if method == "DELETE":
        emu.faults.clear()
        return ok()
    if method == "POST":
        fault = parse_fault(call.request.json())
        if isinstance(fault, str):
            return bad(fault)
        emu.faults.append(fault)
        return ok()
    return ok({"faults": [vars(f) for f in emu.faults]})


def clock(call: Call) -> Reply:
    emu = call.emu
    try:
        seconds = float(_object(call).get("advance", 0))
    except (TypeError, ValueError):
        return bad("advance must be a number of seconds")
    if not math.isfinite(seconds):
        return bad("advance must be a finite number of seconds")
    emu.clock.advance(seconds)
    return ok({"now": emu.now(), "offset": offset_of(emu.clock)})


def policy(call: Call) -> Reply:
    emu = call.emu
    if call.request.method == "POST":
        body = call.request.json()
        if not isinstance(body, dict):
            return bad("expected a JSON object of policy fields")
        old = dict(vars(emu.policy))
        try:
            for key, value in body.items():
                if key not in old:
                    raise ValueError(f"unknown policy field {key}")
                setattr(emu.policy, key, _policy_value(key, old[key], value))
            emu.policy.validate()
        except (TypeError, ValueError) as exc:
            for key, value in old.items():
                setattr(emu.policy, key, value)
            return bad(str(exc))
    return ok(dict(vars(emu.policy)))


def revoke(call: Call) -> Reply:
    body = _object(call)
    if isinstance(body.get("token"), str):
        return ok({"revoked": int(call.emu.revoke_token(body["token"]))})
    if isinstance(body.get("user"), str):
        n = call.emu.revoke_user(body["user"], bool(body.get("deactivate", False)))
        return ok({"revoked": n})
    return bad("expected {token} or {user, deactivate?}")


def _policy_value(key: str, old: Any, value: Any) -> Any:
    """`value` as the type of policy field `key` (validate then checks its range)."""
    if key in OPTIONAL_POLICY_FIELDS:
        return value  # None or an int; Policy.validate says which values it takes
    return type(old)(value)


def users(call: Call) -> Reply:
    change = parse_user_change(call.request.json())
    if isinstance(change, str):
        return bad(change)
    user = call.emu.user_by_email(change.email)
    if user is None:
        return bad("unknown user email")
    ended = change_user(call.emu, user, change)
    return ok({"ok": True, "user": user_json(user), "revoked": ended})


def block(call: Call) -> Reply:
    body = _object(call)
    integ = call.emu.integrations.get(str(body.get("client_id", "")))
    if integ is None:
        return bad("unknown client_id")
    blocked = body.get("blocked", True)
    if not isinstance(blocked, bool):
        return bad("blocked must be true or false")
    ended = block_integration(call.emu, integ, blocked)
    return ok({"ok": True, "blocked": blocked, "revoked": ended})


def client_secrets(call: Call) -> Reply:
    """An integration's secrets: `add` one more, `revoke` one, or `regenerate` (Webex's
    portal button: a new secret, and every other one stops working)."""
    body = _object(call)
    integ = call.emu.integrations.get(str(body.get("client_id", "")))
    if integ is None:
        return bad("unknown client_id")
    add, revoke = body.get("add"), body.get("revoke")
    if isinstance(add, str) and add:
        if not integ.accepts(add):
            integ.extra_secrets.append(add)
    elif isinstance(revoke, str) and revoke:
        if not integ.accepts(revoke):
            return bad("that secret is not held")
        held = [s for s in (integ.client_secret, *integ.extra_secrets) if s != revoke]
        integ.client_secret, integ.extra_secrets = (held[0], held[1:]) if held else ("", [])
    elif body.get("regenerate") is True:
        integ.client_secret, integ.extra_secrets = secrets.token_hex(32), []
        return ok({"ok": True, "client_secret": integ.client_secret})
    else:
        return bad('give "add": SECRET, "revoke": SECRET or "regenerate": true')
    return ok({"ok": True, "held": 1 + len(integ.extra_secrets) if integ.client_secret else 0})


def ledger(call: Call) -> Reply:
    emu = call.emu
    try:
        since = int(call.request.query_params().get("since", "0"))
    except ValueError:
        return bad("since must be a ledger sequence number")
    return ok({"total": emu.ledger_total, "entries": [e for e in emu.ledger if e["seq"] > since]})


def messages(call: Call) -> Reply:
    return ok({"items": call.emu.messages})


def reset(call: Call) -> Reply:
    call.emu.reset()
    return ok()


def device(call: Call) -> Reply:
    body = _object(call)
    reply = device_decide(call.emu, str(body.get("user_code", "")), bool(body.get("approve", True)))
    return ok({"status": reply.status})


def consent_user(call: Call) -> Reply:
    email = _object(call).get("email")
    user = call.emu.user_by_email(email) if isinstance(email, str) else None
    if user is None:
        return bad("unknown user email")
    call.emu.consent_user = user.uuid
    return ok()


def _object(call: Call) -> dict[str, Any]:
    body = call.request.json()
    return body if isinstance(body, dict) else {}


# path → (methods, handler); every POST and DELETE changes state and is saved.
ROUTES: dict[str, tuple[tuple[str, ...], Callable[[Call], Reply]]] = {
    "/_emulator/consent-user": (("POST",), consent_user),
    "/_emulator/faults": (("GET", "POST", "DELETE"), faults),
    "/_emulator/clock": (("POST",), clock),
    "/_emulator/policy": (("GET", "POST"), policy),
    "/_emulator/revoke": (("POST",), revoke),
    "/_emulator/users": (("POST",), users),
    "/_emulator/block": (("POST",), block),
    "/_emulator/client-secrets": (("POST",), client_secrets),
    "/_emulator/ledger": (("GET",), ledger),
    "/_emulator/messages": (("GET",), messages),
    "/_emulator/reset": (("POST",), reset),
    "/_emulator/device": (("POST",), device),
}
