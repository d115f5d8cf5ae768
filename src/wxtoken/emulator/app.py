"""The emulator's HTTP face: Starlette routes over `state.Emulator`, faults, and /_emulator/.

Routes carry Webex's paths, so a client only swaps its base URL. Every response has a
`TrackingID` header (echoing the caller's, as Webex may), and errors use Webex's envelope.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .state import Emulator, Fault, Reply

MAX_FORM = 64 * 1024


class DropConnection(Exception):
    """Raised after the response started, so the server closes the socket mid-response."""


class _DropResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"access', "more_body": True})
        raise DropConnection("fault injected: connection dropped")


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, pw = raw.partition(":")
    return (user, pw) if sep else None


async def _form(request: Request) -> dict[str, str] | None:
    body = await request.body()
    if len(body) > MAX_FORM:
        return None
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return None


async def _json_body(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def _render(reply: Reply, tracking: str) -> Response:
    headers = dict(reply.headers)
    headers["TrackingID"] = tracking
    if isinstance(reply.body, dict):
        return JSONResponse(reply.body, reply.status, headers)
    if isinstance(reply.body, str):
        return HTMLResponse(reply.body, reply.status, headers)
    if isinstance(reply.body, bytes):
        return Response(reply.body, reply.status, headers, media_type="application/json")
    return Response(b"", reply.status, headers)


def _fault_response(emu: Emulator, fault: Fault, tracking: str) -> Response | None:
    headers = {"TrackingID": tracking}
    if fault.kind == "status":
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.body == "empty":
            return Response(b"", fault.status, headers)
        desc = {429: "Too many requests", 423: "Locked"}.get(fault.status, "Service unavailable")
        reply = emu.error(
            fault.status,
            desc,
            desc,
            tracking,
            "temporarily_unavailable" if fault.status >= 500 else None,
        )
        return JSONResponse(reply.body, fault.status, headers)
    if fault.kind == "html":
        page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000
        return HTMLResponse(page + "</body></html>", fault.status or 502, headers)
    if fault.kind == "malformed":
        return Response(b"{'access_token': nope,]", 200, headers, media_type="application/json")
    if fault.kind == "incomplete":
        # Well-formed JSON that lacks the access token: a gateway or a changed API.
        return JSONResponse({"token_type": "Bearer", "expires_in": 3600}, 200, headers)
    if fault.kind == "truncated":
        return Response(b'{"access_token": "abc', 200, headers, media_type="application/json")
    if fault.kind == "huge":
        return Response(
            b" " * (2 * 1024 * 1024) + b"{}", 200, headers, media_type="application/json"
        )
    if fault.kind == "redirect":
        # A token endpoint that redirects: a client following it would replay the secret.
        headers["Location"] = fault.body if fault.body.startswith("http") else "http://127.0.0.1:9/"
        return Response(b"", fault.status if 300 <= fault.status < 400 else 307, headers)
    if fault.kind == "drop":
        return _DropResponse()
    if fault.kind == "trickle":

        async def slow() -> Any:
            for _ in range(1000):
                yield b" "
                await asyncio.sleep(fault.delay or 1.0)

        return StreamingResponse(slow(), 200, headers, media_type="application/json")
    return None


Handler = Callable[[Request, str], Awaitable[Response]]


def create_app(emu: Emulator, *, control: bool = False) -> Starlette:
    def endpoint(name: str, mutates: bool = True) -> Callable[[Handler], Callable[..., Any]]:
        def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def run(request: Request) -> Response:
                tracking = emu.tracking_id(request.headers.get("trackingid"))
                after: Fault | None = None
                while True:
                    fault = emu.take_fault(name)
                    if fault is None:
                        break
                    if fault.kind == "delay":
                        await asyncio.sleep(fault.delay)
                        continue
                    if fault.kind == "drop_after_commit":
                        after = fault
                        break
                    response = _fault_response(emu, fault, tracking)
                    if response is not None:
                        emu.record(name, getattr(response, "status_code", 0), fault=fault.kind)
                        return response
                response = await handler(request, tracking)
                if mutates:
                    emu.save()
                if after is not None:
                    emu.record(name, 0, fault="drop_after_commit")
                    return _DropResponse()
                return response

            return run

        return wrap

    @endpoint("authorize")
    async def authorize(request: Request, tracking: str) -> Response:
        params = parse_qs(request.url.query, keep_blank_values=True, max_num_fields=200)
        return _render(emu.authorize(params, tracking), tracking)

    @endpoint("authorize")
    async def consent(request: Request, tracking: str) -> Response:
        form = await _form(request) or {}
        return _render(emu.consent(form.get("txn", ""), form.get("decision", "")), tracking)

    @endpoint("access_token")
    async def access_token(request: Request, tracking: str) -> Response:
        form = await _form(request)
        reply = emu.token(
            request.headers.get("content-type"),
            form,
            _basic(request.headers.get("authorization")),
            tracking,
        )
        return _render(reply, tracking)

    @endpoint("people_me", mutates=False)
    async def people_me(request: Request, tracking: str) -> Response:
        return _render(emu.people_me(request.headers.get("authorization"), tracking), tracking)

    @endpoint("token_expiry", mutates=False)
    async def token_expiry(request: Request, tracking: str) -> Response:
        return _render(emu.token_expiry(request.headers.get("authorization"), tracking), tracking)

    @endpoint("authorizations")
    async def authorizations(request: Request, tracking: str) -> Response:
        auth = request.headers.get("authorization")
        params = dict(request.query_params)
        if request.method == "GET":
            return _render(emu.list_authorizations(auth, params, tracking), tracking)
        auth_id = request.path_params.get("auth_id")
        return _render(emu.delete_authorizations(auth, auth_id, params, tracking), tracking)

    @endpoint("device_authorize")
    async def device_authorize(request: Request, tracking: str) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}"
        return _render(emu.device_authorize(await _form(request), base, tracking), tracking)

    @endpoint("device_token")
    async def device_token(request: Request, tracking: str) -> Response:
        basic = _basic(request.headers.get("authorization"))
        return _render(emu.device_token(await _form(request), basic, tracking), tracking)

    @endpoint("device_verify")
    async def device_verify(request: Request, tracking: str) -> Response:
        if request.method == "GET":
            from html import escape

            code = escape(request.query_params.get("userCode", ""))
            page = (
                "<!doctype html><title>Webex emulator: activate a device</title>"
                '<form method="post"><label>Code <input name="userCode" '
                f'value="{code}"></label> <button name="decision" value="approve">Approve'
                '</button> <button name="decision" value="deny">Deny</button></form>'
            )
            return HTMLResponse(page, 200, {"TrackingID": tracking})
        form = await _form(request) or {}
        reply = emu.device_decide(form.get("userCode", ""), form.get("decision") == "approve")
        return _render(reply, tracking)

    @endpoint("applications_token")
    async def applications_token(request: Request, tracking: str) -> Response:
        reply = emu.service_app_token(
            request.path_params["app_id"],
            request.headers.get("authorization"),
            await _json_body(request),
            tracking,
        )
        return _render(reply, tracking)

    @endpoint("messages")
    async def messages(request: Request, tracking: str) -> Response:
        reply = emu.post_message(
            request.headers.get("authorization"), await _json_body(request), tracking
        )
        return _render(reply, tracking)

    @endpoint("discovery", mutates=False)
    async def discovery(request: Request, tracking: str) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}/v1"
        doc = {
            "issuer": f"{base}",
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/access_token",
            "device_authorization_endpoint": f"{base}/device/authorize",
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
        return JSONResponse(doc, 200, {"TrackingID": tracking})

    routes = [
        Route("/v1/authorize", authorize, methods=["GET"]),
        Route("/v1/authorize/consent", consent, methods=["POST"]),
        Route("/v1/access_token", access_token, methods=["POST"]),
        Route("/v1/people/me", people_me, methods=["GET"]),
        Route("/v1/authorizations/tokenExpiry", token_expiry, methods=["GET"]),
        Route("/v1/authorizations", authorizations, methods=["GET", "DELETE"]),
        Route("/v1/authorizations/{auth_id}", authorizations, methods=["DELETE"]),
        Route("/v1/device/authorize", device_authorize, methods=["POST"]),
        Route("/v1/device/token", device_token, methods=["POST"]),
        Route("/v1/device/verify", device_verify, methods=["GET", "POST"]),
        Route("/v1/applications/{app_id}/token", applications_token, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/.well-known/openid-configuration", discovery, methods=["GET"]),
    ]
    if control:
        routes += control_routes(emu)
    return Starlette(routes=routes)


def control_routes(emu: Emulator) -> list[Route]:
    """The test-only API; served only when enabled and only on loopback (see server.py)."""

    def ok(data: Any = None) -> JSONResponse:
        return JSONResponse({"ok": True} if data is None else data)

    def bad(msg: str) -> JSONResponse:
        return JSONResponse({"ok": False, "error": msg}, 400)

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return ok({"faults": [vars(f) for f in emu.faults]})
        if request.method == "DELETE":
            emu.faults.clear()
            return ok()
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            return bad("expected {endpoint, kind, count?, status?, retry_after?, delay?}")
        try:
            fault = Fault(
                endpoint=str(body.get("endpoint", "access_token")),
                kind=body["kind"],
                count=int(body.get("count", 1)),
                status=int(body.get("status", 502 if body["kind"] == "html" else 503)),
                retry_after=None if body.get("retry_after") is None else str(body["retry_after"]),
                delay=float(body.get("delay", 0.0)),
                body=str(body.get("body", "envelope")),
            )
        except (TypeError, ValueError) as exc:
            return bad(str(exc))
        kinds = {
            "status",
            "delay",
            "html",
            "malformed",
            "truncated",
            "drop",
            "drop_after_commit",
            "trickle",
            "huge",
            "redirect",
            "incomplete",
        }
        if fault.kind not in kinds:
            return bad(f"kind must be one of {sorted(kinds)}")
        emu.faults.append(fault)
        return ok()

    async def clock(request: Request) -> Response:
        body = await _json_body(request) or {}
        try:
            emu.offset += float(body.get("advance", 0))
        except (TypeError, ValueError):
            return bad("advance must be a number of seconds")
        emu.save()
        return ok({"now": emu.now(), "offset": emu.offset})

    async def policy(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            if not isinstance(body, dict):
                return bad("expected a JSON object of policy fields")
            old = dict(vars(emu.policy))
            try:
                for key, value in body.items():
                    if key not in old:
                        raise ValueError(f"unknown policy field {key}")
                    setattr(emu.policy, key, type(old[key])(value))
                emu.policy.validate()
            except (TypeError, ValueError) as exc:
                for key, value in old.items():
                    setattr(emu.policy, key, value)
                return bad(str(exc))
            emu.save()
        return ok(dict(vars(emu.policy)))

    async def revoke(request: Request) -> Response:
        body = await _json_body(request) or {}
        if isinstance(body.get("token"), str):
            return ok({"revoked": int(emu.revoke_token(body["token"]))})
        if isinstance(body.get("user"), str):
            n = emu.revoke_user(body["user"], bool(body.get("deactivate", False)))
            return ok({"revoked": n})
        return bad("expected {token} or {user, deactivate?}")

    async def block(request: Request) -> Response:
        body = await _json_body(request) or {}
        integ = emu.integrations.get(str(body.get("client_id", "")))
        if integ is None:
            return bad("unknown client_id")
        integ.blocked = bool(body.get("blocked", True))
        return ok()

    async def ledger(request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        return ok(
            {"total": emu.ledger_total, "entries": [e for e in emu.ledger if e["seq"] > since]}
        )

    async def messages(request: Request) -> Response:
        return ok({"items": emu.messages})

    async def reset(request: Request) -> Response:
        emu.reset()
        emu.save()
        return ok()

    async def device_approve(request: Request) -> Response:
        body = await _json_body(request) or {}
        reply = emu.device_decide(str(body.get("user_code", "")), body.get("approve", True))
        return ok({"status": reply.status})

    async def consent_user(request: Request) -> Response:
        body = await _json_body(request) or {}
        user = next((u for u in emu.users.values() if u.email == body.get("email")), None)
        if user is None:
            return bad("unknown user email")
        emu.consent_user = user.uuid
        return ok()

    return [
        Route("/_emulator/consent-user", consent_user, methods=["POST"]),
        Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/clock", clock, methods=["POST"]),
        Route("/_emulator/policy", policy, methods=["GET", "POST"]),
        Route("/_emulator/revoke", revoke, methods=["POST"]),
        Route("/_emulator/block", block, methods=["POST"]),
        Route("/_emulator/ledger", ledger, methods=["GET"]),
        Route("/_emulator/messages", messages, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/device", device_approve, methods=["POST"]),
    ]
