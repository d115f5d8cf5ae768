"""The emulator's model of Webex identity: registry, codes, grants, tokens, policies, ledger.

No HTTP here: every operation takes parsed inputs and returns `Reply(status, body, headers)`, so
the rules can be read (and tested) apart from Starlette. The behaviour follows the "Emulator
contract" in shared/docs/webex-oauth.md; where Webex is undocumented, `Policy` makes it a switch.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..oauth import s256_challenge, valid_code_verifier

OIDC_SCOPES = frozenset({"openid", "email", "profile", "phone", "address"})
ADMIN_ROLES = frozenset({"Full_Admin", "User_Admin", "Device_Admin", "id_full_admin"})
MSG_400 = "The request could not be understood by the server due to malformed syntax."
MSG_401 = "The request requires a valid access token set in the Authorization request header."
MSG_403 = (
    "The server understood the request, but refused to fulfill it because the access token is "
    "missing required scopes or the user is missing required roles or licenses."
)
MSG_404 = "The requested resource could not be found."
ROTATE_MODES = ("never", "always", "grace", "reuse-kills-family")
EXPIRY_MODES = ("sliding", "fixed", "sliding-daily")

DEFAULT_SCOPES = (
    "spark:kms",
    "spark:people_read",
    "spark:messages_write",
    "spark:calls_read",
    "spark-admin:people_read",
    "spark-admin:recordings_read",
    "spark-compliance:recordings_read",
    "identity:tokens_read",
    "identity:tokens_write",
    "spark:applications_token",
)


def _hex(n: int) -> str:
    return secrets.token_hex(n)


def fp(value: str) -> str:
    """Ledger fingerprint: correlates without storing the secret itself."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def b64_id(kind: str, raw: str) -> str:
    return base64.b64encode(f"ciscospark://us/{kind}/{raw}".encode()).decode().rstrip("=")


@dataclass
class Integration:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scopes: list[str]
    name: str = "Emulated integration"
    blocked: bool = False


@dataclass
class User:
    uuid: str
    email: str
    org_uuid: str
    display_name: str
    roles: list[str] = field(default_factory=lambda: ["Full_Admin"])
    active: bool = True

    @property
    def person_id(self) -> str:
        return b64_id("PEOPLE", self.uuid)

    @property
    def org_id(self) -> str:
        return b64_id("ORGANIZATION", self.org_uuid)


@dataclass
class ServiceApp:
    application_id: str
    client_id: str
    client_secret: str
    scopes: list[str]
    authorized_org_uuids: list[str]
    name: str = "Emulated service app"


@dataclass
class Policy:
    access_ttl: int = 1_209_600
    refresh_ttl: int = 7_776_000
    report_minus_one: bool = True  # Webex reports 1209599 / 7775999
    rotate: str = "never"
    grace_seconds: int = 60
    refresh_expiry: str = "sliding"
    code_ttl: int = 300
    code_single_use: bool = True
    revoke_on_code_reuse: bool = False
    reuse_refresh_per_user_client: bool = False
    revoke_previous_access_on_refresh: bool = False
    invalid_client_status: int = 401
    wrong_content_type_status: int = 400
    rfc_error_keys: bool = False
    pkce_plain_without_method: bool = True
    echo_tracking_id: bool = True
    auto_approve: bool = False
    device_interval: int = 2
    device_ttl: int = 300

    def validate(self) -> None:
        if self.rotate not in ROTATE_MODES:
            raise ValueError(f"rotate must be one of {', '.join(ROTATE_MODES)}")
        if self.refresh_expiry not in EXPIRY_MODES:
            raise ValueError(f"refresh_expiry must be one of {', '.join(EXPIRY_MODES)}")
        for name in ("access_ttl", "refresh_ttl", "code_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass
class Code:
    value: str
    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    scopes: list[str]
    user_uuid: str
    challenge: str | None
    method: str | None
    issued_at: float
    used: bool = False
    grant_ids: list[str] = field(default_factory=list)


@dataclass
class Grant:
    """One refresh authorization (user x client), with its current refresh token."""

    id: str
    client_id: str
    user_uuid: str
    scopes: list[str]
    refresh_token: str
    refresh_expires_at: float
    created: float
    last_reset_at: float
    revoked: bool = False
    cached_access: str | None = None  # sliding-daily: the response repeated within 24 h
    last_refresh_at: float | None = None
    app_name: str = ""


@dataclass
class AccessToken:
    id: str
    value: str
    grant_id: str | None
    client_id: str
    user_uuid: str | None
    scopes: list[str]
    expires_at: float
    created: float
    revoked: bool = False
    bot: bool = False


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scopes: list[str]
    expires_at: float
    approved_by: str | None = None
    denied: bool = False
    last_poll: float = 0.0


@dataclass
class Fault:
    endpoint: str  # endpoint name or "*"
    kind: str  # status | delay | html | malformed | truncated | drop | drop_after_commit | trickle
    count: int = 1
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    body: str = "envelope"  # for status faults: envelope | empty


@dataclass
class Reply:
    status: int
    body: Any = None  # dict → JSON, str → HTML, bytes → raw, None → empty
    headers: dict[str, str] = field(default_factory=dict)


class Emulator:
    """All state of one emulated Webex; single-threaded (driven by one asyncio loop)."""

    def __init__(self, policy: Policy | None = None, cluster: str = "PF84"):
        self.policy = policy or Policy()
        self.policy.validate()
        self.cluster = cluster
        self.offset = 0.0
        self.integrations: dict[str, Integration] = {}
        self.users: dict[str, User] = {}  # by uuid
        self.service_apps: dict[str, ServiceApp] = {}
        self.codes: dict[str, Code] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_index: dict[str, str] = {}  # refresh token → grant id
        self.retired_refresh: dict[str, tuple[str, float]] = {}  # old token → (grant, until)
        self.access: dict[str, AccessToken] = {}
        self.devices: dict[str, DeviceCode] = {}
        self.consents: dict[str, dict[str, str]] = {}  # pending consent transactions
        self.faults: list[Fault] = []
        self.messages: list[dict[str, Any]] = []
        self.ledger: collections.deque[dict[str, Any]] = collections.deque(maxlen=200_000)
        self.ledger_total = 0
        self.consent_user: str | None = None
        self.persist_path: Path | None = None

    # --- time and identifiers --------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.offset

    def new_token(self, org_uuid: str) -> str:
        raw = f"{uuid.uuid4()}{_hex(4)}-{_hex(2)[:3]}".encode()
        return f"{base64.b64encode(raw).decode().rstrip('=')}_{self.cluster}_{org_uuid}"

    def tracking_id(self, sent: str | None) -> str:
        if sent and self.policy.echo_tracking_id and len(sent) < 200 and sent.isprintable():
            return sent
        return f"ROUTER_{str(uuid.uuid4()).upper()}"

    def record(self, endpoint: str, status: int, **fields: Any) -> None:
        self.ledger_total += 1
        entry = {"seq": self.ledger_total, "at": round(self.now(), 3), "endpoint": endpoint}
        entry["status"] = status
        entry.update({k: v for k, v in fields.items() if v is not None})
        self.ledger.append(entry)

    # --- registry --------------------------------------------------------------------------

    def add_integration(self, integ: Integration) -> Integration:
        self.integrations[integ.client_id] = integ
        return integ

    def add_user(self, user: User) -> User:
        self.users[user.uuid] = user
        if self.consent_user is None:
            self.consent_user = user.uuid
        return user

    def seed_default(self, redirect_uris: list[str] | None = None) -> dict[str, Any]:
        """One org, one admin, one integration, one service app, one bot."""
        org = str(uuid.uuid4())
        admin = self.add_user(
            User(str(uuid.uuid4()), "admin@example.com", org, "Avery Admin", ["Full_Admin"])
        )
        self.add_user(User(str(uuid.uuid4()), "user@example.com", org, "Uma User", []))
        integ = self.add_integration(
            Integration(
                client_id="C" + _hex(32),
                client_secret=_hex(32),
                redirect_uris=redirect_uris
                or [
                    "http://127.0.0.1:8765/callback",
                    "http://localhost:8765/callback",
                    "https://oauth.pstmn.io/v1/callback",
                ],
                scopes=list(DEFAULT_SCOPES),
                name="Call recorder (emulated)",
            )
        )
        app = ServiceApp(
            application_id=b64_id("APPLICATION", str(uuid.uuid4())),
            client_id="C" + _hex(32),
            client_secret=_hex(32),
            scopes=["spark-admin:recordings_read", "spark:kms"],
            authorized_org_uuids=[org],
        )
        self.service_apps[app.application_id] = app
        bot = self.issue_bot_token(org)
        return {"integration": integ, "user": admin, "service_app": app, "bot_token": bot}

    def issue_bot_token(self, org_uuid: str) -> str:
        value = self.new_token(org_uuid)
        now = self.now()
        self.access[value] = AccessToken(
            id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
            value=value,
            grant_id=None,
            client_id="bot",
            user_uuid=None,
            scopes=["spark:messages_write", "spark:people_read"],
            expires_at=now + 100 * 365 * 86400,
            created=now,
            bot=True,
        )
        return value

    # --- errors ----------------------------------------------------------------------------

    def error(
        self,
        status: int,
        message: str,
        description: str,
        tracking: str,
        oauth_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        body: dict[str, Any] = {
            "message": message,
            "errors": [{"description": description}],
            "trackingId": tracking,
        }
        if oauth_code and self.policy.rfc_error_keys:
            body["error"] = oauth_code
            body["error_description"] = description
        return Reply(status, body, dict(headers or {}))

    def oauth_error(self, code: str, detail: str, tracking: str, status: int = 400) -> Reply:
        return self.error(
            status, MSG_400 if status == 400 else detail, f"{code}: {detail}", tracking, code
        )

    # --- /v1/authorize ---------------------------------------------------------------------

    def authorize(self, params: Mapping[str, list[str]], tracking: str) -> Reply:
        def one(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        client_id = one("client_id")
        integ = self.integrations.get(client_id or "")
        if integ is None:
            self.record("authorize", 400, client_id=client_id, error="invalid_client")
            return self.error(400, MSG_400, "Client Id is invalid", tracking, "invalid_client")
        redirect = one("redirect_uri")
        if redirect is None:
            if len(integ.redirect_uris) != 1:
                self.record("authorize", 400, client_id=client_id, error="redirect_uri")
                return self.error(
                    400, MSG_400, "redirect_uri is required", tracking, "invalid_request"
                )
            redirect = integ.redirect_uris[0]
        elif redirect not in integ.redirect_uris:
            # No redirect to an unregistered URI, ever (RFC 6749 §4.1.2.1).
            self.record("authorize", 400, client_id=client_id, error="redirect_uri_mismatch")
            return self.error(
                400,
                MSG_400,
                "redirect_uri does not match a registered URI",
                tracking,
                "invalid_request",
            )
        state = one("state")

        def bounce(error: str, desc: str) -> Reply:
            self.record("authorize", 302, client_id=client_id, error=error)
            q = {"error": error, "error_description": desc}
            if state is not None:
                q["state"] = state
            return Reply(302, None, {"location": _with_query(redirect, q)})

        if one("response_type") != "code":
            return bounce("unsupported_response_type", "response_type must be code")
        scope_text = one("scope")
        if not scope_text or not scope_text.split():
            return bounce("invalid_scope", "scope is required")
        scopes = list(dict.fromkeys(scope_text.split()))
        unknown = [s for s in scopes if s not in integ.scopes and s not in OIDC_SCOPES]
        if unknown:
            return bounce("invalid_scope", f"scope not registered: {' '.join(unknown)}")
        challenge, method = one("code_challenge"), one("code_challenge_method")
        if challenge is not None:
            if method is None:
                if not self.policy.pkce_plain_without_method:
                    return bounce("invalid_request", "code_challenge_method is required")
                method = "plain"
            if method not in ("S256", "plain"):
                return bounce("invalid_request", "code_challenge_method must be S256 or plain")
        elif method is not None:
            return bounce("invalid_request", "code_challenge_method without code_challenge")
        if integ.blocked:
            return bounce("access_denied", "your administrator denied access to the integration")
        if one("prompt") == "none":
            return bounce("login_required", "no active session")
        txn = {
            "client_id": integ.client_id,
            "redirect_uri": redirect,
            "redirect_uri_sent": "1" if one("redirect_uri") is not None else "",
            "scopes": " ".join(scopes),
            "state": state or "",
            "has_state": "1" if state is not None else "",
            "challenge": challenge or "",
            "method": method or "",
        }
        if self.policy.auto_approve:
            return self.decide(txn, approve=True)
        txn_id = secrets.token_urlsafe(24)
        self.consents[txn_id] = txn
        self.record("authorize", 200, client_id=client_id, outcome="consent_page")
        user = self.users.get(self.consent_user or "")
        return Reply(200, consent_page(txn_id, integ, user, scopes), {})

    def consent(self, txn_id: str, decision: str) -> Reply:
        txn = self.consents.pop(txn_id, None)
        if txn is None:
            self.record("consent", 400, error="unknown_transaction")
            return Reply(400, "<p>This sign-in request has expired. Start again.</p>", {})
        return self.decide(txn, approve=decision == "approve")

    def decide(self, txn: Mapping[str, str], *, approve: bool) -> Reply:
        redirect = txn["redirect_uri"]
        q: dict[str, str] = {}
        if not approve:
            q = {"error": "access_denied", "error_description": "The user denied the request"}
            outcome = "denied"
        else:
            user = self.users.get(self.consent_user or "")
            if user is None or not user.active:
                q = {"error": "access_denied", "error_description": "no active user"}
                outcome = "denied"
            else:
                code = self.new_token(user.org_uuid)
                self.codes[code] = Code(
                    value=code,
                    client_id=txn["client_id"],
                    redirect_uri=redirect,
                    redirect_uri_sent=bool(txn["redirect_uri_sent"]),
                    scopes=txn["scopes"].split(),
                    user_uuid=user.uuid,
                    challenge=txn["challenge"] or None,
                    method=txn["method"] or None,
                    issued_at=self.now(),
                )
                q = {"code": code}
                outcome = "approved"
        if txn["has_state"]:
            q["state"] = txn["state"]
        self.record("authorize", 302, client_id=txn["client_id"], outcome=outcome)
        return Reply(302, None, {"location": _with_query(redirect, q)})

    # --- client authentication -------------------------------------------------------------

    def authenticate_client(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, tracking: str
    ) -> Integration | ServiceApp | Reply:
        body_id, body_secret = form.get("client_id"), form.get("client_secret")
        client_id: str | None
        secret: str | None
        if basic is not None:
            if (body_id and body_id != basic[0]) or (body_secret and body_secret != basic[1]):
                return self.oauth_error("invalid_request", "client credentials disagree", tracking)
            client_id, secret = basic
        else:
            client_id, secret = body_id, body_secret
        if not client_id or not secret:
            return self.oauth_error("invalid_request", "client credentials are required", tracking)
        client: Integration | ServiceApp | None = self.integrations.get(client_id)
        secret = secret or ""
        if client is None:
            client = next((a for a in self.service_apps.values() if a.client_id == client_id), None)
        if client is None or not secrets.compare_digest(client.client_secret, secret):
            status = self.policy.invalid_client_status
            return self.error(
                status,
                "The request requires a valid client_id and client_secret.",
                "invalid_client: client authentication failed",
                tracking,
                "invalid_client",
            )
        return client

    # --- /v1/access_token ------------------------------------------------------------------

    def token(
        self,
        content_type: str | None,
        form: Mapping[str, str] | None,
        basic: tuple[str, str] | None,
        tracking: str,
    ) -> Reply:
        ctype = (content_type or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded" or form is None:
            self.record("access_token", self.policy.wrong_content_type_status, error="content_type")
            return self.oauth_error(
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
                tracking,
                status=self.policy.wrong_content_type_status,
            )
        grant_type = form.get("grant_type")
        client = self.authenticate_client(form, basic, tracking)
        if isinstance(client, Reply):
            self.record(
                "access_token",
                client.status,
                grant_type=grant_type,
                client_id=form.get("client_id"),
                error="invalid_client",
            )
            return client
        if grant_type == "authorization_code":
            reply = self._code_grant(client, form, tracking)
        elif grant_type == "refresh_token":
            reply = self._refresh_grant(client, form, tracking)
        else:
            reply = self.oauth_error(
                "unsupported_grant_type", f"{grant_type} is not supported", tracking
            )
            self.record("access_token", 400, grant_type=grant_type, error="unsupported_grant_type")
        return reply

    def _code_grant(
        self, client: Integration | ServiceApp, form: Mapping[str, str], tracking: str
    ) -> Reply:
        value = form.get("code", "")
        code = self.codes.get(value)

        def fail(detail: str) -> Reply:
            self.record(
                "access_token",
                400,
                grant_type="authorization_code",
                client_id=client.client_id,
                code_fp=fp(value) if value else None,
                error="invalid_grant",
                detail=detail,
            )
            return self.oauth_error("invalid_grant", detail, tracking)

        if not value:
            return fail("code is required")
        if code is None:
            return fail("Authorization code is invalid")
        if code.client_id != client.client_id:
            return fail("Authorization code was issued to another client")
        if code.used and self.policy.code_single_use:
            if self.policy.revoke_on_code_reuse:
                for gid in code.grant_ids:
                    self._revoke_grant(gid)
            return fail("Authorization code has already been used")
        if self.now() - code.issued_at > self.policy.code_ttl:
            return fail("Authorization code has expired")
        redirect = form.get("redirect_uri")
        if redirect is None or redirect != code.redirect_uri:
            return fail("redirect_uri does not match the authorization request")
        if code.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier or not valid_code_verifier(verifier):
                return fail("code_verifier is missing or malformed")
            expected = s256_challenge(verifier) if code.method == "S256" else verifier
            if not secrets.compare_digest(expected, code.challenge):
                return fail("code_verifier does not match the code_challenge")
        code.used = True
        user = self.users[code.user_uuid]
        now = self.now()
        grant: Grant | None = None
        if self.policy.reuse_refresh_per_user_client:
            grant = next(
                (
                    g
                    for g in self.grants.values()
                    if g.client_id == client.client_id
                    and g.user_uuid == user.uuid
                    and not g.revoked
                    and g.refresh_expires_at > now
                ),
                None,
            )
            if grant is not None:
                grant.scopes = code.scopes
        if grant is None:
            grant = self._new_grant(client, user, code.scopes, now)
        code.grant_ids.append(grant.id)
        access = self._issue_access(grant, now)
        self.record(
            "access_token",
            200,
            grant_type="authorization_code",
            client_id=client.client_id,
            code_fp=fp(value),
            refresh_fp=fp(grant.refresh_token),
            access_fp=fp(access.value),
        )
        return Reply(200, self._token_body(grant, access, now))

    def _new_grant(
        self, client: Integration | ServiceApp, user: User, scopes: list[str], now: float
    ) -> Grant:
        """A new refresh authorization (user x client) with a fresh refresh token."""
        grant = Grant(
            id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
            client_id=client.client_id,
            user_uuid=user.uuid,
            scopes=scopes,
            refresh_token=self.new_token(user.org_uuid),
            refresh_expires_at=now + self.policy.refresh_ttl,
            created=now,
            last_reset_at=now,
            app_name=client.name,
        )
        self.grants[grant.id] = grant
        self.refresh_index[grant.refresh_token] = grant.id
        return grant

    def _issue_access(self, grant: Grant, now: float) -> AccessToken:
        user = self.users[grant.user_uuid]
        value = self.new_token(user.org_uuid)
        token = AccessToken(
            id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
            value=value,
            grant_id=grant.id,
            client_id=grant.client_id,
            user_uuid=grant.user_uuid,
            scopes=grant.scopes,
            expires_at=now + self.policy.access_ttl,
            created=now,
        )
        self.access[value] = token
        grant.cached_access = value
        return token

    def _token_body(self, grant: Grant, access: AccessToken, now: float) -> dict[str, Any]:
        minus = 1 if self.policy.report_minus_one else 0
        body: dict[str, Any] = {
            "access_token": access.value,
            "expires_in": max(0, int(access.expires_at - now) - minus),
            "refresh_token": grant.refresh_token,
            "refresh_token_expires_in": max(0, int(grant.refresh_expires_at - now) - minus),
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
        }
        if "openid" in grant.scopes:
            body["id_token"] = (
                "eyJhbGciOiJub25lIn0."
                + base64.urlsafe_b64encode(json.dumps({"sub": grant.user_uuid}).encode())
                .decode()
                .rstrip("=")
                + "."
            )
        return body

    def _refresh_grant(
        self, client: Integration | ServiceApp, form: Mapping[str, str], tracking: str
    ) -> Reply:
        presented = form.get("refresh_token", "")
        now = self.now()

        def fail(detail: str) -> Reply:
            self.record(
                "access_token",
                400,
                grant_type="refresh_token",
                client_id=client.client_id,
                refresh_fp=fp(presented) if presented else None,
                error="invalid_grant",
                detail=detail,
            )
            return self.oauth_error("invalid_grant", detail, tracking)

        if not presented:
            return fail("refresh_token is required")
        grant_id = self.refresh_index.get(presented)
        via_grace = False
        if grant_id is None:
            retired = self.retired_refresh.get(presented)
            if retired is None:
                return fail("Refresh token is invalid")
            gid, until = retired
            if self.policy.rotate == "reuse-kills-family":
                self._revoke_grant(gid)
                return fail("Refresh token was already used; the grant has been revoked")
            if self.policy.rotate == "grace" and now <= until:
                grant_id, via_grace = gid, True
            else:
                return fail("Refresh token is invalid")
        grant = self.grants[grant_id]
        if grant.client_id != client.client_id:
            return fail("Refresh token was issued to another client")
        if grant.revoked:
            return fail("Refresh token has been revoked")
        if grant.refresh_expires_at <= now:
            return fail("Refresh token has expired")
        user = self.users.get(grant.user_uuid)
        if user is None or not user.active:
            return fail("The user who granted access is no longer active")
        if (
            self.policy.refresh_expiry == "sliding-daily"
            and grant.last_refresh_at is not None
            and now - grant.last_refresh_at < 86400
            and grant.cached_access in self.access
            and not self.access[grant.cached_access].revoked
        ):
            # webex/integration-refresh: within 24 h a refresh repeats the previous answer.
            access = self.access[grant.cached_access]
            self.record(
                "access_token",
                200,
                grant_type="refresh_token",
                client_id=client.client_id,
                refresh_fp=fp(presented),
                access_fp=fp(access.value),
                outcome="cached",
            )
            return Reply(200, self._token_body(grant, access, now))
        if self.policy.revoke_previous_access_on_refresh:
            for tok in self.access.values():
                if tok.grant_id == grant.id:
                    tok.revoked = True
        if not via_grace and self.policy.rotate != "never":
            old = grant.refresh_token
            del self.refresh_index[old]
            grant.refresh_token = self.new_token(user.org_uuid)
            self.refresh_index[grant.refresh_token] = grant.id
            self.retired_refresh[old] = (grant.id, now + self.policy.grace_seconds)
        if self.policy.refresh_expiry != "fixed":
            grant.refresh_expires_at = now + self.policy.refresh_ttl
            grant.last_reset_at = now
        grant.last_refresh_at = now
        access = self._issue_access(grant, now)
        self.record(
            "access_token",
            200,
            grant_type="refresh_token",
            client_id=client.client_id,
            refresh_fp=fp(presented),
            issued_refresh_fp=fp(grant.refresh_token),
            access_fp=fp(access.value),
            rotated=grant.refresh_token != presented,
        )
        return Reply(200, self._token_body(grant, access, now))

    # --- bearer-protected resources ----------------------------------------------------------

    def bearer(self, header: str | None, tracking: str, endpoint: str) -> AccessToken | Reply:
        token = None
        if header and header.startswith("Bearer "):
            token = self.access.get(header[7:].strip())
        if token is not None and token.grant_id is not None:
            grant = self.grants.get(token.grant_id)
            if grant is None or grant.revoked:
                token = None
        if token is None or token.revoked or token.expires_at <= self.now():
            self.record(endpoint, 401, error="invalid_token")
            return self.error(401, MSG_401, MSG_401, tracking)
        return token

    def require(
        self,
        token: AccessToken,
        scopes: tuple[str, ...],
        tracking: str,
        endpoint: str,
        admin: bool = False,
    ) -> Reply | None:
        missing = [s for s in scopes if s not in token.scopes]
        user = self.users.get(token.user_uuid or "")
        if missing or (admin and (user is None or not ADMIN_ROLES & set(user.roles))):
            self.record(endpoint, 403, error="forbidden", missing=" ".join(missing) or None)
            return self.error(403, MSG_403, MSG_403, tracking)
        return None

    def person_json(self, user: User) -> dict[str, Any]:
        first, _, last = user.display_name.partition(" ")
        return {
            "id": user.person_id,
            "emails": [user.email],
            "displayName": user.display_name,
            "firstName": first,
            "lastName": last,
            "orgId": user.org_id,
            "type": "person",
            "roles": [b64_id("ROLE", r) for r in user.roles],
            "licenses": [b64_id("LICENSE", "BCSTD_calling")],
            "created": "2024-01-01T00:00:00.000Z",
            "status": "active",
        }

    def people_me(self, auth: str | None, tracking: str) -> Reply:
        token = self.bearer(auth, tracking, "people_me")
        if isinstance(token, Reply):
            return token
        if token.bot:
            self.record("people_me", 200)
            return Reply(
                200,
                {
                    "id": b64_id("PEOPLE", "bot"),
                    "type": "bot",
                    "displayName": "Emulated bot",
                    "emails": ["bot@webex.bot"],
                },
            )
        denied = self.require(token, ("spark:people_read",), tracking, "people_me")
        if denied:
            return denied
        self.record("people_me", 200, access_fp=fp(token.value))
        return Reply(200, self.person_json(self.users[token.user_uuid or ""]))

    def token_expiry(self, auth: str | None, tracking: str) -> Reply:
        token = self.bearer(auth, tracking, "token_expiry")
        if isinstance(token, Reply):
            return token
        self.record("token_expiry", 200, access_fp=fp(token.value))
        return Reply(200, {"exp": int(token.expires_at * 1000)})

    def _iso(self, ts: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))

    def list_authorizations(
        self, auth: str | None, params: Mapping[str, str], tracking: str
    ) -> Reply:
        token = self.bearer(auth, tracking, "authorizations")
        if isinstance(token, Reply):
            return token
        denied = self.require(
            token, ("identity:tokens_read",), tracking, "authorizations", admin=True
        )
        if denied:
            return denied
        pid, email = params.get("personId"), params.get("personEmail")
        if (pid is None) == (email is None):
            self.record("authorizations", 400, error="bad_query")
            return self.error(
                400, MSG_400, "Exactly one of personId or personEmail is required", tracking
            )
        user = next(
            (
                u
                for u in self.users.values()
                if (pid and u.person_id == pid) or (email and u.email == email)
            ),
            None,
        )
        items: list[dict[str, Any]] = []
        if user is not None:
            for g in self.grants.values():
                if g.user_uuid != user.uuid or g.revoked:
                    continue
                base = {
                    "applicationId": b64_id("APPLICATION", g.client_id),
                    "applicationName": g.app_name,
                    "personId": user.person_id,
                    "clientId": g.client_id,
                }
                items.append(dict(base, id=g.id, created=self._iso(g.created), type="refresh"))
                for a in self.access.values():
                    if a.grant_id == g.id and not a.revoked and a.expires_at > self.now():
                        items.append(
                            dict(base, id=a.id, created=self._iso(a.created), type="access")
                        )
        self.record("authorizations", 200)
        return Reply(200, {"items": items})

    def delete_authorizations(
        self, auth: str | None, auth_id: str | None, params: Mapping[str, str], tracking: str
    ) -> Reply:
        token = self.bearer(auth, tracking, "authorizations_delete")
        if isinstance(token, Reply):
            return token
        denied = self.require(
            token, ("identity:tokens_write",), tracking, "authorizations_delete", admin=True
        )
        if denied:
            return denied
        caller = self.users.get(token.user_uuid or "")
        if auth_id is not None:
            if auth_id in self.grants:
                self._revoke_grant(auth_id)
            else:
                match = next((a for a in self.access.values() if a.id == auth_id), None)
                if match is None:
                    self.record("authorizations_delete", 404, error="not_found")
                    return self.error(404, MSG_404, "Authorization not found", tracking)
                match.revoked = True
            self.record("authorizations_delete", 204, authorization=auth_id)
            return Reply(204)
        client_id = params.get("clientId")
        if not client_id:
            self.record("authorizations_delete", 400, error="bad_query")
            return self.error(400, MSG_400, "clientId is required", tracking)
        org = params.get("orgId")
        org_uuid = None if caller is None else caller.org_uuid
        if org:
            org_uuid = next((u.org_uuid for u in self.users.values() if u.org_id == org), org)
        n = 0
        for g in list(self.grants.values()):
            owner = self.users.get(g.user_uuid)
            if g.client_id == client_id and owner is not None and owner.org_uuid == org_uuid:
                self._revoke_grant(g.id)
                n += 1
        self.record("authorizations_delete", 204, client_id=client_id, revoked=n)
        return Reply(204)

    def _revoke_grant(self, grant_id: str) -> None:
        grant = self.grants.get(grant_id)
        if grant is None:
            return
        grant.revoked = True
        self.refresh_index.pop(grant.refresh_token, None)
        for tok in self.access.values():
            if tok.grant_id == grant_id:
                tok.revoked = True

    # --- device grant ------------------------------------------------------------------------

    def device_authorize(
        self, form: Mapping[str, str] | None, base_url: str, tracking: str
    ) -> Reply:
        form = form or {}
        integ = self.integrations.get(form.get("client_id", ""))
        if integ is None:
            self.record("device_authorize", 400, error="invalid_client")
            return self.error(400, MSG_400, "Client Id is invalid", tracking, "invalid_client")
        scopes = form.get("scope", "").split()
        bad = [s for s in scopes if s not in integ.scopes]
        if not scopes or bad:
            self.record("device_authorize", 400, error="invalid_scope")
            return self.oauth_error("invalid_scope", "scope is missing or not registered", tracking)
        now = self.now()
        dev = DeviceCode(
            device_code=secrets.token_urlsafe(32),
            user_code=f"{secrets.randbelow(10**6):06d}",
            client_id=integ.client_id,
            scopes=scopes,
            expires_at=now + self.policy.device_ttl,
        )
        if self.policy.auto_approve:
            dev.approved_by = self.consent_user
        self.devices[dev.device_code] = dev
        self.record("device_authorize", 200, client_id=integ.client_id)
        verify = f"{base_url}/v1/device/verify"
        return Reply(
            200,
            {
                "device_code": dev.device_code,
                "expires_in": self.policy.device_ttl,
                "user_code": dev.user_code,
                "verification_uri": verify,
                "verification_uri_complete": f"{verify}?userCode={dev.user_code}",
                "interval": self.policy.device_interval,
            },
        )

    def device_decide(self, user_code: str, approve: bool) -> Reply:
        dev = next((d for d in self.devices.values() if d.user_code == user_code), None)
        if dev is None or dev.expires_at <= self.now():
            self.record("device_verify", 400, error="unknown_code")
            return Reply(400, "<p>That code is unknown or expired.</p>")
        if approve:
            dev.approved_by = self.consent_user
        else:
            dev.denied = True
        self.record("device_verify", 200, outcome="approved" if approve else "denied")
        return Reply(200, f"<p>Device {'approved' if approve else 'denied'}.</p>")

    def device_token(
        self, form: Mapping[str, str] | None, basic: tuple[str, str] | None, tracking: str
    ) -> Reply:
        form = form or {}
        client = self.authenticate_client(form, basic, tracking)
        if isinstance(client, Reply):
            self.record("device_token", client.status, error="invalid_client")
            return client
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code":
            self.record("device_token", 400, error="unsupported_grant_type")
            return self.oauth_error(
                "unsupported_grant_type", "device_code grant expected", tracking
            )
        dev = self.devices.get(form.get("device_code", ""))
        now = self.now()
        if dev is None or dev.client_id != client.client_id or dev.expires_at <= now:
            self.record("device_token", 400, error="invalid_grant")
            return self.oauth_error("invalid_grant", "device_code is invalid or expired", tracking)
        if dev.denied:
            self.record("device_token", 400, error="access_denied")
            return self.oauth_error("access_denied", "the user denied the request", tracking)
        if dev.approved_by is None:
            too_fast = now - dev.last_poll < self.policy.device_interval
            dev.last_poll = now
            if too_fast:
                self.record("device_token", 400, error="slow_down")
                return self.oauth_error("slow_down", "polling too fast", tracking)
            self.record("device_token", 428, error="authorization_pending")
            return self.error(
                428,
                "authorization_pending",
                "authorization_pending: the user has not yet approved",
                tracking,
                "authorization_pending",
            )
        user = self.users[dev.approved_by]
        del self.devices[dev.device_code]
        grant = self._new_grant(client, user, dev.scopes, now)
        access = self._issue_access(grant, now)
        self.record(
            "device_token", 200, client_id=client.client_id, refresh_fp=fp(grant.refresh_token)
        )
        return Reply(200, self._token_body(grant, access, now))

    # --- service apps and messages ----------------------------------------------------------

    def service_app_token(self, app_id: str, auth: str | None, body: Any, tracking: str) -> Reply:
        token = self.bearer(auth, tracking, "applications_token")
        if isinstance(token, Reply):
            return token
        denied = self.require(token, ("spark:applications_token",), tracking, "applications_token")
        if denied:
            return denied
        app = self.service_apps.get(app_id)
        if app is None:
            self.record("applications_token", 404, error="unknown_app")
            return self.error(404, MSG_404, "Application not found", tracking)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("clientId", "clientSecret", "targetOrgId")
        ):
            self.record("applications_token", 400, error="bad_body")
            return self.error(
                400, MSG_400, "clientId, clientSecret and targetOrgId are required", tracking
            )
        if body["clientId"] != app.client_id or not secrets.compare_digest(
            body["clientSecret"], app.client_secret
        ):
            self.record("applications_token", 401, error="invalid_client")
            return self.error(
                401, "Invalid client credentials", "The provided clientSecret is invalid", tracking
            )
        org_uuid = next(
            (u.org_uuid for u in self.users.values() if u.org_id == body["targetOrgId"]),
            body["targetOrgId"],
        )
        if org_uuid not in app.authorized_org_uuids:
            self.record("applications_token", 403, error="not_authorized")
            return self.error(
                403, MSG_403, "The service app is not authorized in that org", tracking
            )
        # A service app acts as a machine account of the target org.
        machine = next(
            (
                u
                for u in self.users.values()
                if u.org_uuid == org_uuid and u.email.startswith("machine-")
            ),
            None,
        )
        if machine is None:
            machine = self.add_user(
                User(
                    str(uuid.uuid4()),
                    f"machine-{app.client_id[:8]}@example",
                    org_uuid,
                    app.name,
                    ["Full_Admin"],
                )
            )
        now = self.now()
        grant = self._new_grant(app, machine, list(app.scopes), now)
        access = self._issue_access(grant, now)
        body_out = self._token_body(grant, access, now)
        body_out.pop("scope", None)
        self.record("applications_token", 200, client_id=app.client_id)
        return Reply(200, body_out)

    def post_message(self, auth: str | None, body: Any, tracking: str) -> Reply:
        token = self.bearer(auth, tracking, "messages")
        if isinstance(token, Reply):
            return token
        denied = self.require(token, ("spark:messages_write",), tracking, "messages")
        if denied:
            return denied
        if (
            not isinstance(body, dict)
            or not (
                isinstance(body.get("roomId"), str) or isinstance(body.get("toPersonEmail"), str)
            )
            or not (isinstance(body.get("text"), str) or isinstance(body.get("markdown"), str))
        ):
            self.record("messages", 400, error="bad_body")
            return self.error(
                400,
                MSG_400,
                "roomId or toPersonEmail, and text or markdown, are required",
                tracking,
            )
        msg = {
            "id": b64_id("MESSAGE", str(uuid.uuid4())),
            "roomId": body.get("roomId"),
            "toPersonEmail": body.get("toPersonEmail"),
            "text": body.get("text"),
            "markdown": body.get("markdown"),
            "created": self._iso(self.now()),
        }
        self.messages.append(msg)
        self.record("messages", 200)
        return Reply(200, {k: v for k, v in msg.items() if v is not None})

    # --- test control ------------------------------------------------------------------------

    def take_fault(self, endpoint: str) -> Fault | None:
        for f in self.faults:
            if f.endpoint in (endpoint, "*") and f.count > 0:
                f.count -= 1
                if f.count == 0:
                    self.faults.remove(f)
                return f
        return None

    def revoke_token(self, value: str) -> bool:
        gid = self.refresh_index.get(value)
        if gid is not None:
            self._revoke_grant(gid)
            return True
        tok = self.access.get(value)
        if tok is not None:
            tok.revoked = True
            return True
        return False

    def revoke_user(self, email: str, deactivate: bool) -> int:
        user = next((u for u in self.users.values() if u.email == email), None)
        if user is None:
            return 0
        n = 0
        for g in list(self.grants.values()):
            if g.user_uuid == user.uuid and not g.revoked:
                self._revoke_grant(g.id)
                n += 1
        if deactivate:
            user.active = False
        return n

    def reset(self) -> None:
        self.codes.clear()
        self.grants.clear()
        self.refresh_index.clear()
        self.retired_refresh.clear()
        self.access = {k: v for k, v in self.access.items() if v.bot}
        self.devices.clear()
        self.consents.clear()
        self.faults.clear()
        self.messages.clear()
        self.ledger.clear()
        self.ledger_total = 0
        self.offset = 0.0

    # --- persistence -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        def dump(items: Mapping[str, Any]) -> list[dict[str, Any]]:
            return [dataclasses.asdict(v) for v in items.values()]

        return {
            "version": 1,
            "policy": dataclasses.asdict(self.policy),
            "cluster": self.cluster,
            "offset": self.offset,
            "integrations": dump(self.integrations),
            "users": dump(self.users),
            "service_apps": dump(self.service_apps),
            "codes": dump(self.codes),
            "grants": dump(self.grants),
            "retired_refresh": {k: list(v) for k, v in self.retired_refresh.items()},
            "access": dump(self.access),
            "messages": self.messages,
            "consent_user": self.consent_user,
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> Emulator:
        emu = cls(Policy(**data["policy"]), cluster=data.get("cluster", "PF84"))
        emu.offset = data.get("offset", 0.0)
        for d in data["integrations"]:
            emu.add_integration(Integration(**d))
        for d in data["users"]:
            emu.users[d["uuid"]] = User(**d)
        for d in data["service_apps"]:
            emu.service_apps[d["application_id"]] = ServiceApp(**d)
        for d in data["codes"]:
            emu.codes[d["value"]] = Code(**d)
        for d in data["grants"]:
            g = Grant(**d)
            emu.grants[g.id] = g
            if not g.revoked:
                emu.refresh_index[g.refresh_token] = g.id
        emu.retired_refresh = {k: (v[0], v[1]) for k, v in data["retired_refresh"].items()}
        for d in data["access"]:
            emu.access[d["value"]] = AccessToken(**d)
        emu.messages = list(data.get("messages", []))
        emu.consent_user = data.get("consent_user")
        return emu

    def save(self) -> None:
        if self.persist_path is None:
            return
        path = self.persist_path
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.snapshot(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}{urlencode(params)}"


def consent_page(txn_id: str, integ: Integration, user: User | None, scopes: list[str]) -> str:
    from html import escape

    who = escape(f"{user.display_name} <{user.email}>") if user else "nobody"
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Webex emulator: authorize {escape(integ.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem}}.note{{color:#666}}</style></head>
<body><h1>{escape(integ.name)} wants access</h1>
<p>Signed in as <strong>{who}</strong>.</p>
<p>It asks for these scopes:</p><ul>{items}</ul>
<form method="post" action="/v1/authorize/consent">
<input type="hidden" name="txn" value="{escape(txn_id)}">
<button type="submit" name="decision" value="approve" id="approve">Accept</button>
<button type="submit" name="decision" value="deny" id="deny">Decline</button>
</form>
<p class="note">This is the wxtoken Webex emulator, not Webex.</p></body></html>"""
