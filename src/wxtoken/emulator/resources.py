"""Bearer-protected resources: people/me, the people list (paged with Link headers),
tokenExpiry, authorizations, messages; and discovery.

Each checks the bearer token first (401 with Webex's message when it is missing, unknown,
expired or revoked), then scopes and, for authorizations, an admin role (403).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import causes
from .model import (
    ADMIN_ROLES,
    MSG_400,
    MSG_401,
    MSG_403,
    MSG_404,
    ROLE_IDS,
    AccessToken,
    Reply,
    User,
    b64_id,
    fp,
)

if TYPE_CHECKING:
    from .state import Emulator


def bearer(emu: Emulator, header: str | None, tracking: str, endpoint: str) -> AccessToken | Reply:
    """The header's access token if it may be used; else Webex's one 401 for every cause
    (the ledger names the cause)."""
    sent = bool(header and header.startswith("Bearer "))
    tok = emu.access.get(header[7:].strip()) if header and sent else None
    cause = causes.dead_token_cause(emu, tok, sent)
    if tok is None or cause is not None:
        emu.record(endpoint, 401, error="invalid_token", cause=cause)
        return emu.error(401, MSG_401, MSG_401, tracking)
    return tok


def require(
    emu: Emulator,
    tok: AccessToken,
    scopes: tuple[str, ...],
    tracking: str,
    endpoint: str,
    admin: bool = False,
) -> Reply | None:
    """None when `tok` carries `scopes` (and its user an admin role if asked); else the 403,
    which is the same whether a scope or a role is missing, as Webex's is."""
    missing = [s for s in scopes if s not in tok.scopes]
    user = emu.users.get(tok.user_uuid or "")
    not_admin = admin and (user is None or not ADMIN_ROLES & set(user.roles))
    if missing or not_admin:
        cause = causes.MISSING_SCOPE if missing else causes.NOT_ADMIN
        missed = " ".join(missing) or None
        emu.record(endpoint, 403, error="forbidden", cause=cause, missing=missed)
        return emu.error(403, MSG_403, MSG_403, tracking)
    return None


def authorized(
    emu: Emulator,
    header: str | None,
    tracking: str,
    endpoint: str,
    scopes: tuple[str, ...],
    admin: bool = False,
) -> AccessToken | Reply:
    """The bearer token if it is valid and carries `scopes` (and an admin, if asked); else
    the 401 or 403."""
    tok = bearer(emu, header, tracking, endpoint)
    if isinstance(tok, Reply):
        return tok
    return require(emu, tok, scopes, tracking, endpoint, admin) or tok


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def person_json(user: User) -> dict[str, Any]:
    first, _, last = user.display_name.partition(" ")
    return {
        "id": user.person_id,
        "emails": [user.email],
        "displayName": user.display_name,
        "firstName": first,
        "lastName": last,
        "orgId": user.org_id,
        "type": "person",
        "roles": [b64_id("ROLE", ROLE_IDS.get(r, r)) for r in user.roles],
        "licenses": [b64_id("LICENSE", "BCSTD_calling")],
        "created": "2024-01-01T00:00:00.000Z",
        "status": "active",
    }


def people_me(emu: Emulator, auth: str | None, tracking: str) -> Reply:
    tok = bearer(emu, auth, tracking, "people_me")
    if isinstance(tok, Reply):
        return tok
    if tok.bot:
        emu.record("people_me", 200)
        bot = {
            "id": b64_id("PEOPLE", "bot"),
            "type": "bot",
            "displayName": "Emulated bot",
            "emails": ["bot@webex.bot"],
        }
        return Reply(200, bot)
    denied = require(emu, tok, ("spark:people_read",), tracking, "people_me")
    if denied:
        return denied
    emu.record("people_me", 200, access_fp=fp(tok.value))
    return Reply(200, person_json(emu.users[tok.user_uuid or ""]))


MAX_PAGE = 1000  # Webex's largest `max` for list endpoints


def list_people(
    emu: Emulator, auth: str | None, params: Mapping[str, str], base_url: str, tracking: str
) -> Reply:
    """GET /v1/people[?email=][&max=N][&cursor=]: the people of the caller's org, a page at a
    time; the next page's address is in a `Link: <...>; rel="next"` header, as Webex sends it.
    Listing the whole org takes an admin; a non-admin must name an email."""
    tok = bearer(emu, auth, tracking, "people")
    if isinstance(tok, Reply):
        return tok
    email = params.get("email")
    denied = require(emu, tok, ("spark:people_read",), tracking, "people", admin=email is None)
    if denied:
        return denied
    try:
        size = int(params.get("max", "100"))
        start = int(params.get("cursor", "0"), 16)
    except ValueError:
        size = start = -1
    if not 1 <= size <= MAX_PAGE or start < 0:
        emu.record("people", 400, error="bad_query")
        return emu.error(400, MSG_400, f"max must be 1 to {MAX_PAGE}; cursor as given", tracking)
    org = emu.users[tok.user_uuid or ""].org_uuid
    people = sorted(
        (u for u in emu.users.values() if u.org_uuid == org and email in (None, u.email)),
        key=lambda u: u.email,
    )
    page = people[start : start + size]
    headers = {}
    if start + size < len(people):
        query = urlencode({k: v for k, v in (("email", email), ("max", str(size))) if v})
        headers["link"] = f'<{base_url}/v1/people?{query}&cursor={start + size:x}>; rel="next"'
    emu.record("people", 200, access_fp=fp(tok.value))
    return Reply(200, {"items": [person_json(u) for u in page]}, headers)


def token_expiry(emu: Emulator, auth: str | None, tracking: str) -> Reply:
    tok = bearer(emu, auth, tracking, "token_expiry")
    if isinstance(tok, Reply):
        return tok
    emu.record("token_expiry", 200, access_fp=fp(tok.value))
    return Reply(200, {"exp": int(tok.expires_at * 1000)})


def list_authorizations(
    emu: Emulator, auth: str | None, params: Mapping[str, str], tracking: str
) -> Reply:
    """GET /v1/authorizations?personId=|personEmail=: one item per grant and live access token."""
    scopes = ("identity:tokens_read",)
    tok = authorized(emu, auth, tracking, "authorizations", scopes, admin=True)
    if isinstance(tok, Reply):
        return tok
    pid, email = params.get("personId"), params.get("personEmail")
    if (pid is None) == (email is None):
        emu.record("authorizations", 400, error="bad_query")
        desc = "Exactly one of personId or personEmail is required"
        return emu.error(400, MSG_400, desc, tracking)
    user = next(
        (
            u
            for u in emu.users.values()
            if (pid and u.person_id == pid) or (email and u.email == email)
        ),
        None,
    )
    items: list[dict[str, Any]] = []
    now = emu.now()
    if user is not None:
        for g in emu.grants.values():
            if g.user_uuid != user.uuid or g.revoked:
                continue
            base = {
                "applicationId": b64_id("APPLICATION", g.client_id),
                "applicationName": g.app_name,
                "personId": user.person_id,
                "clientId": g.client_id,
            }
            items.append(dict(base, id=g.id, created=iso(g.created), type="refresh"))
            for a in emu.access.values():
                if a.grant_id == g.id and not a.revoked and a.expires_at > now:
                    items.append(dict(base, id=a.id, created=iso(a.created), type="access"))
    emu.record("authorizations", 200)
    return Reply(200, {"items": items})


def delete_authorizations(
    emu: Emulator, auth: str | None, auth_id: str | None, params: Mapping[str, str], tracking: str
) -> Reply:
    """DELETE /v1/authorizations/{id}, or ?clientId=[&orgId=]: every grant of a client in an org."""
    endpoint = "authorizations_delete"
    tok = authorized(emu, auth, tracking, endpoint, ("identity:tokens_write",), admin=True)
    if isinstance(tok, Reply):
        return tok
    caller = emu.users.get(tok.user_uuid or "")
    if auth_id is not None:
        if auth_id in emu.grants:
            emu.revoke_grant(auth_id)
        else:
            match = next((a for a in emu.access.values() if a.id == auth_id), None)
            if match is None:
                emu.record(endpoint, 404, error="not_found")
                return emu.error(404, MSG_404, "Authorization not found", tracking)
            emu.revoke_token(match.value)
        emu.record(endpoint, 204, authorization=auth_id)
        return Reply(204)
    client_id = params.get("clientId")
    if not client_id:
        emu.record(endpoint, 400, error="bad_query")
        return emu.error(400, MSG_400, "clientId is required", tracking)
    org = params.get("orgId")
    org_uuid = None if caller is None else caller.org_uuid
    if org:
        org_uuid = next((u.org_uuid for u in emu.users.values() if u.org_id == org), org)
    n = 0
    for g in list(emu.grants.values()):
        owner = emu.users.get(g.user_uuid)
        if g.client_id == client_id and owner is not None and owner.org_uuid == org_uuid:
            emu.revoke_grant(g.id)
            n += 1
    emu.record(endpoint, 204, client_id=client_id, revoked=n)
    return Reply(204)


def post_message(emu: Emulator, auth: str | None, body: Any, tracking: str) -> Reply:
    """POST /v1/messages: kept for `GET /_emulator/messages` (alerts land here in tests)."""
    tok = authorized(emu, auth, tracking, "messages", ("spark:messages_write",))
    if isinstance(tok, Reply):
        return tok
    if (
        not isinstance(body, dict)
        or not (isinstance(body.get("roomId"), str) or isinstance(body.get("toPersonEmail"), str))
        or not (isinstance(body.get("text"), str) or isinstance(body.get("markdown"), str))
    ):
        emu.record("messages", 400, error="bad_body")
        desc = "roomId or toPersonEmail, and text or markdown, are required"
        return emu.error(400, MSG_400, desc, tracking)
    msg = {
        "id": b64_id("MESSAGE", str(uuid.uuid4())),
        "roomId": body.get("roomId"),
        "toPersonEmail": body.get("toPersonEmail"),
        "text": body.get("text"),
        "markdown": body.get("markdown"),
        "created": iso(emu.now()),
    }
    emu.messages.append(msg)
    emu.record("messages", 200)
    return Reply(200, {k: v for k, v in msg.items() if v is not None})


def discovery(base_url: str) -> Reply:
    """The OpenID configuration document, pointed at wherever the caller reached us."""
    base = f"{base_url}/v1"
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
    return Reply(200, doc)
