"""The route table: the request as front ends hand it over, and which rule serves each path.

Paths and methods are Webex's (and, with `control`, the `/_emulator/` test API's); each entry
adapts the request's parts (query, form, JSON body, Basic credentials, bearer header) to the
plain arguments of the rule it calls.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl

from . import control
from .authorize import authorize, consent
from .device import device_authorize, device_decide, device_token, verify_page
from .grants import token
from .model import MSG_400, Reply
from .resources import (
    delete_authorizations,
    discovery,
    list_authorizations,
    list_people,
    people_me,
    post_message,
    token_expiry,
)
from .service_app import service_app_token

if TYPE_CHECKING:
    from .state import Emulator

MAX_FORM = 64 * 1024  # a token request is a few hundred bytes; anything larger is not a form
MAX_QUERY_FIELDS = 200
PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class WireRequest:
    """What a front end hands over: header names lower-case (first value wins), path decoded,
    query as sent, and the scheme://host[:port] the client used (documents echo it)."""

    method: str
    path: str
    query: str = ""
    # Both may hold secrets (Authorization, client_secret, codes, tokens): kept out of reprs.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    base_url: str = "http://127.0.0.1"

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def form(self) -> dict[str, str] | None:
        """The urlencoded body, or None when it cannot be one (too big, not UTF-8)."""
        if len(self.body) > MAX_FORM:
            return None
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return None

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class Call:
    """One routed request, as handlers see it."""

    emu: Emulator
    request: WireRequest
    params: Mapping[str, str]  # path parameters
    tracking: str  # "" for the control API, which has none


@dataclass(frozen=True)
class Route:
    pattern: str  # Starlette's syntax: "{name}" is one path segment
    methods: frozenset[str]
    handler: Callable[[Call], Reply]
    endpoint: str | None  # the name faults and the ledger use; None for the control API
    mutates: bool
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if `path` is this route's, else None."""
        if self.regex is None:
            return {} if path == self.pattern else None
        m = self.regex.fullmatch(path)
        return None if m is None else m.groupdict()


def route(
    pattern: str,
    methods: tuple[str, ...],
    handler: Callable[[Call], Reply],
    endpoint: str | None,
    *,
    mutates: bool = True,
) -> Route:
    regex = None
    if "{" in pattern:
        regex = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern))
    # As in Starlette, a route that answers GET answers HEAD too.
    allowed = frozenset(methods) | ({"HEAD"} if "GET" in methods else set())
    return Route(pattern, allowed, handler, endpoint, mutates, regex)


def reads(method: str) -> bool:
    return method in ("GET", "HEAD")


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, pw = raw.partition(":")
    return (user, pw) if sep else None


def _authorize(c: Call) -> Reply:
    try:
        params = parse_qs(c.request.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return c.emu.error(400, MSG_400, "too many query parameters", c.tracking)
    return authorize(c.emu, params, c.tracking)


def _consent(c: Call) -> Reply:
    form = c.request.form() or {}
    return consent(c.emu, form.get("txn", ""), form.get("decision", ""))


def _access_token(c: Call) -> Reply:
    r = c.request
    return token(
        c.emu, r.header("content-type"), r.form(), _basic(r.header("authorization")), c.tracking
    )


def _authorizations(c: Call) -> Reply:
    auth, query = c.request.header("authorization"), c.request.query_params()
    if reads(c.request.method):
        return list_authorizations(c.emu, auth, query, c.tracking)
    return delete_authorizations(c.emu, auth, c.params.get("auth_id"), query, c.tracking)


def _people(c: Call) -> Reply:
    auth, query = c.request.header("authorization"), c.request.query_params()
    return list_people(c.emu, auth, query, c.request.base_url, c.tracking)


def _device_verify(c: Call) -> Reply:
    if reads(c.request.method):
        return verify_page(c.emu, c.request.query_params().get("userCode", ""))
    form = c.request.form() or {}
    return device_decide(c.emu, form.get("userCode", ""), form.get("decision") == "approve")


def _bearer(rule: Callable[[Emulator, str | None, str], Reply]) -> Callable[[Call], Reply]:
    return lambda c: rule(c.emu, c.request.header("authorization"), c.tracking)


def _device_authorize(c: Call) -> Reply:
    return device_authorize(c.emu, c.request.form(), c.request.base_url, c.tracking)


def _device_token(c: Call) -> Reply:
    basic = _basic(c.request.header("authorization"))
    return device_token(c.emu, c.request.form(), basic, c.tracking)


def _applications_token(c: Call) -> Reply:
    auth, body = c.request.header("authorization"), c.request.json()
    return service_app_token(c.emu, c.params["app_id"], auth, body, c.tracking)


def _messages(c: Call) -> Reply:
    return post_message(c.emu, c.request.header("authorization"), c.request.json(), c.tracking)


API_ROUTES = (
    route("/v1/authorize", ("GET",), _authorize, "authorize"),
    route("/v1/authorize/consent", ("POST",), _consent, "authorize"),
    route("/v1/access_token", ("POST",), _access_token, "access_token"),
    route("/v1/people/me", ("GET",), _bearer(people_me), "people_me", mutates=False),
    route("/v1/people", ("GET",), _people, "people", mutates=False),
    route(
        "/v1/authorizations/tokenExpiry",
        ("GET",),
        _bearer(token_expiry),
        "token_expiry",
        mutates=False,
    ),
    route("/v1/authorizations", ("GET", "DELETE"), _authorizations, "authorizations"),
    route("/v1/authorizations/{auth_id}", ("DELETE",), _authorizations, "authorizations"),
    route("/v1/device/authorize", ("POST",), _device_authorize, "device_authorize"),
    route("/v1/device/token", ("POST",), _device_token, "device_token"),
    route("/v1/device/verify", ("GET", "POST"), _device_verify, "device_verify"),
    route("/v1/applications/{app_id}/token", ("POST",), _applications_token, "applications_token"),
    route("/v1/messages", ("POST",), _messages, "messages"),
    route(
        "/v1/.well-known/openid-configuration",
        ("GET",),
        lambda c: discovery(c.request.base_url),
        "discovery",
        mutates=False,
    ),
)

CONTROL_ROUTES = tuple(
    route(path, methods, handler, None) for path, (methods, handler) in control.ROUTES.items()
)
