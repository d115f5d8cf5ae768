"""`/v1/access_token`: client authentication, the code and refresh grants, and token issuing.

The issuing helpers (`new_grant`, `issue_access`, `token_body`) are shared with the device and
service-app grants, so every grant answers in one shape. Where Webex's behaviour is unknown
(rotation, expiry sliding, code reuse) the emulator's `Policy` decides.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..oauth import s256_challenge, valid_code_verifier
from . import causes
from .model import (
    REFRESH_REFUSED,
    TOKEN_LIMIT_REACHED,
    AccessToken,
    Grant,
    Integration,
    Reply,
    ServiceApp,
    User,
    b64_id,
    fp,
)

if TYPE_CHECKING:
    from .state import Emulator

Client = Integration | ServiceApp


def authenticate_client(
    emu: Emulator, form: Mapping[str, str], basic: tuple[str, str] | None, tracking: str
) -> Client | Reply:
    """HTTP Basic or form credentials (both may be sent, then they must agree)."""
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    client_id: str | None
    secret: str | None
    if basic is not None:
        if (body_id and body_id != basic[0]) or (body_secret and body_secret != basic[1]):
            return emu.oauth_error("invalid_request", "client credentials disagree", tracking)
        client_id, secret = basic
    else:
        client_id, secret = body_id, body_secret
    if not client_id or not secret:
        return emu.oauth_error("invalid_request", "client credentials are required", tracking)
    client: Client | None = emu.integrations.get(client_id)
    if client is None:
        client = next((a for a in emu.service_apps.values() if a.client_id == client_id), None)
    if client is None or not (
        client.accepts(secret)
        if isinstance(client, Integration)
        else secrets.compare_digest(client.client_secret, secret)
    ):
        return emu.error(
            emu.policy.invalid_client_status,
            "The request requires a valid client_id and client_secret.",
            "invalid_client: client authentication failed",
            tracking,
            "invalid_client",
        )
    return client


def token(
    emu: Emulator,
    content_type: str | None,
    form: Mapping[str, str] | None,
    basic: tuple[str, str] | None,
    tracking: str,
) -> Reply:
    """POST /v1/access_token."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded" or form is None:
        emu.record("access_token", emu.policy.wrong_content_type_status, error="content_type")
        return emu.oauth_error(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
            tracking,
            status=emu.policy.wrong_content_type_status,
        )
    grant_type = form.get("grant_type")
    client = authenticate_client(emu, form, basic, tracking)
    if isinstance(client, Reply):
        refused = basic[1] if basic is not None else form.get("client_secret")
        emu.record(
            "access_token",
            client.status,
            grant_type=grant_type,
            client_id=basic[0] if basic is not None else form.get("client_id"),
            error="invalid_client",
            secret_fp=fp(refused) if refused else None,
        )
        return client
    if grant_type == "authorization_code":
        return code_grant(emu, client, form, tracking)
    if grant_type == "refresh_token":
        return refresh_grant(emu, client, form, tracking)
    emu.record("access_token", 400, grant_type=grant_type, error="unsupported_grant_type")
    return emu.oauth_error("unsupported_grant_type", f"{grant_type} is not supported", tracking)


class Refuse(Protocol):
    def __call__(self, cause: str, detail: str | None = None, error: str = ...) -> Reply: ...


def refusal(
    emu: Emulator, tracking: str, grant_type: str, client: Client, **fingerprints: str | None
) -> Refuse:
    """The refusal of one grant request: `fail(cause, detail=None, error="invalid_grant")`
    records it with its cause (causes.py) and answers 400 with `error`. Without a `detail`,
    the answer is the one description every refused refresh token gets."""

    def fail(cause: str, detail: str | None = None, error: str = "invalid_grant") -> Reply:
        emu.record(
            "access_token",
            400,
            grant_type=grant_type,
            client_id=client.client_id,
            error=error,
            cause=cause,
            **fingerprints,
        )
        return emu.oauth_error(error, detail or REFRESH_REFUSED, tracking)

    return fail


def code_grant(emu: Emulator, client: Client, form: Mapping[str, str], tracking: str) -> Reply:
    value = form.get("code", "")
    code = emu.codes.get(value)
    code_fp = fp(value) if value else None
    fail = refusal(emu, tracking, "authorization_code", client, code_fp=code_fp)

    if not value:
        return fail("missing_code", "code is required")
    if code is None:
        return fail(causes.UNKNOWN, "Authorization code is invalid")
    if code.client_id != client.client_id:
        return fail(causes.OTHER_CLIENT, "Authorization code was issued to another client")
    if code.used and emu.policy.code_single_use:
        if emu.policy.revoke_on_code_reuse:
            for gid in code.grant_ids:
                emu.revoke_grant(gid, causes.CODE_REUSED)
        return fail("code_used", "Authorization code has already been used")
    now = emu.now()
    if now - code.issued_at > emu.policy.code_ttl:
        return fail(causes.EXPIRED, "Authorization code has expired")
    redirect = form.get("redirect_uri")
    if redirect is None or redirect != code.redirect_uri:
        return fail("redirect_uri", "redirect_uri does not match the authorization request")
    if code.challenge is not None:
        verifier = form.get("code_verifier")
        if not verifier or not valid_code_verifier(verifier):
            return fail("pkce", "code_verifier is missing or malformed")
        expected = s256_challenge(verifier) if code.method == "S256" else verifier
        if not secrets.compare_digest(expected, code.challenge):
            return fail("pkce", "code_verifier does not match the code_challenge")
    # A code is spent once it is presented whole, even if the exchange is then refused.
    code.used = True
    user = emu.users[code.user_uuid]
    if isinstance(client, Integration) and client.blocked:
        return fail(causes.BLOCKED, "Authorization code is invalid")
    if causes.over_token_limit(emu, client.client_id, user.uuid, now):
        return fail(causes.TOKEN_LIMIT, TOKEN_LIMIT_REACHED, error="tokenlimit_reached")
    grant: Grant | None = None
    if emu.policy.reuse_refresh_per_user_client:
        grant = live_grant(emu, client.client_id, user.uuid, now)
        if grant is not None:
            grant.scopes = code.scopes
    if grant is None:
        grant = new_grant(emu, client, user, code.scopes, now)
    code.grant_ids.append(grant.id)
    access = issue_access(emu, grant, now)
    ledger = {"code_fp": fp(value), "refresh_fp": fp(grant.refresh_token)}
    return granted(emu, "authorization_code", client, grant, access, now, **ledger)


def find_grant(emu: Emulator, presented: str) -> tuple[Grant | None, str | None, bool]:
    """The grant a presented refresh token belongs to, the cause to refuse it for (None: go
    on), and whether it was accepted only as a rotated-away token inside its grace period."""
    grant_id = emu.refresh_index.get(presented)
    if grant_id is not None:
        return emu.grants[grant_id], None, False
    retired = emu.retired_refresh.get(presented)
    if retired is not None:
        gid, until = retired
        if emu.policy.rotate == "reuse-kills-family":
            emu.revoke_grant(gid, causes.REUSE_DETECTED)
            return None, causes.REUSE_DETECTED, False
        if emu.policy.rotate == "grace" and emu.now() <= until:
            return emu.grants[gid], None, True
        return None, causes.ROTATED, False
    # A revoked grant's token has left the index; the ledger still names why it ended.
    grant = next((g for g in emu.grants.values() if g.refresh_token == presented), None)
    return grant, None if grant is not None else causes.UNKNOWN, False


def refresh_grant(emu: Emulator, client: Client, form: Mapping[str, str], tracking: str) -> Reply:
    presented = form.get("refresh_token", "")
    now = emu.now()
    refresh_fp = fp(presented) if presented else None
    fail = refusal(emu, tracking, "refresh_token", client, refresh_fp=refresh_fp)

    if not presented:
        return fail("missing_refresh_token", "refresh_token is required")
    grant, cause, via_grace = find_grant(emu, presented)
    if grant is None:
        return fail(cause or causes.UNKNOWN)
    if grant.client_id != client.client_id:
        return fail(causes.OTHER_CLIENT)
    if grant.revoked:
        return fail(grant.revoked_by or causes.REVOKED)
    if grant.refresh_expires_at <= now:
        return fail(causes.EXPIRED)
    user = emu.users.get(grant.user_uuid)
    if user is None or not user.active:
        return fail(causes.DEACTIVATED)
    cached = emu.access.get(grant.cached_access or "")
    if (
        emu.policy.refresh_expiry == "sliding-daily"
        and grant.last_refresh_at is not None
        and now - grant.last_refresh_at < 86400
        and cached is not None
        and causes.dead_token_cause(emu, cached, True) is None
    ):
        # webex/integration-refresh: within 24 h a refresh repeats the previous answer (but
        # never an access token that has died meanwhile: a short-lived one is replaced).
        ledger = {"refresh_fp": fp(presented), "outcome": "cached"}
        return granted(emu, "refresh_token", client, grant, cached, now, **ledger)
    sparing = grant.id if emu.policy.revoke_previous_access_on_refresh else None
    if causes.over_token_limit(emu, client.client_id, user.uuid, now, sparing):
        return fail(causes.TOKEN_LIMIT, TOKEN_LIMIT_REACHED, error="tokenlimit_reached")
    if sparing is not None:
        for tok in emu.access.values():
            if tok.grant_id == grant.id and not tok.revoked:
                tok.revoked, tok.revoked_by = True, causes.SUPERSEDED
    if not via_grace and emu.policy.rotate != "never":
        old = grant.refresh_token
        del emu.refresh_index[old]
        grant.refresh_token = emu.new_token(user.org_uuid)
        emu.refresh_index[grant.refresh_token] = grant.id
        emu.retired_refresh[old] = (grant.id, now + emu.policy.grace_seconds)
    if emu.policy.refresh_expiry != "fixed":
        grant.refresh_expires_at = now + emu.policy.refresh_ttl
        grant.last_reset_at = now
    grant.last_refresh_at = now
    access = issue_access(emu, grant, now)
    return granted(
        emu,
        "refresh_token",
        client,
        grant,
        access,
        now,
        refresh_fp=fp(presented),
        issued_refresh_fp=fp(grant.refresh_token),
        rotated=grant.refresh_token != presented,
    )


def granted(
    emu: Emulator,
    grant_type: str,
    client: Client,
    grant: Grant,
    access: AccessToken,
    now: float,
    **ledger: Any,
) -> Reply:
    """Record a grant that succeeded (fingerprints, never tokens) and answer with the tokens."""
    emu.record(
        "access_token",
        200,
        grant_type=grant_type,
        client_id=client.client_id,
        access_fp=fp(access.value),
        **ledger,
    )
    return Reply(200, token_body(emu, grant, access, now))


def live_grant(emu: Emulator, client_id: str, user_uuid: str, now: float) -> Grant | None:
    """The user's unrevoked, unexpired grant for this client, if there is one."""
    return next(
        (
            g
            for g in emu.grants.values()
            if g.client_id == client_id
            and g.user_uuid == user_uuid
            and not g.revoked
            and g.refresh_expires_at > now
        ),
        None,
    )


def new_grant(emu: Emulator, client: Client, user: User, scopes: list[str], now: float) -> Grant:
    """A new refresh authorization (user x client) with a fresh refresh token."""
    grant = Grant(
        id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
        client_id=client.client_id,
        user_uuid=user.uuid,
        scopes=scopes,
        refresh_token=emu.new_token(user.org_uuid),
        refresh_expires_at=now + emu.policy.refresh_ttl,
        created=now,
        last_reset_at=now,
        app_name=client.name,
    )
    emu.grants[grant.id] = grant
    emu.refresh_index[grant.refresh_token] = grant.id
    return grant


def issue_access(emu: Emulator, grant: Grant, now: float) -> AccessToken:
    user = emu.users[grant.user_uuid]
    value = emu.new_token(user.org_uuid)
    access = AccessToken(
        id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
        value=value,
        grant_id=grant.id,
        client_id=grant.client_id,
        user_uuid=grant.user_uuid,
        scopes=grant.scopes,
        expires_at=now + emu.policy.access_ttl,
        created=now,
    )
    emu.access[value] = access
    grant.cached_access = value
    return access


def token_body(emu: Emulator, grant: Grant, access: AccessToken, now: float) -> dict[str, Any]:
    """Webex's token response; lifetimes counted from `now`, reported one second short."""
    minus = 1 if emu.policy.report_minus_one else 0
    body: dict[str, Any] = {
        "access_token": access.value,
        "expires_in": max(0, int(access.expires_at - now) - minus),
        "refresh_token": grant.refresh_token,
        "refresh_token_expires_in": max(0, int(grant.refresh_expires_at - now) - minus),
        "token_type": "Bearer",
        "scope": " ".join(grant.scopes),
    }
    if "openid" in grant.scopes:
        claims = base64.urlsafe_b64encode(json.dumps({"sub": grant.user_uuid}).encode())
        body["id_token"] = "eyJhbGciOiJub25lIn0." + claims.decode().rstrip("=") + "."
    return body
