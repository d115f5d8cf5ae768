"""The emulator's records: registry entries, codes, grants, tokens, policy, faults and replies.

Plain dataclasses with no behaviour beyond their own validation, so every other module of the
emulator (and its state file) agrees on one shape. Secret-bearing fields are kept out of reprs:
a failing test that prints a record must not print a token or a client secret.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

OIDC_SCOPES = frozenset({"openid", "email", "profile", "phone", "address"})
# Webex names a role in people/me by its identity role id (base64 of
# ciscospark://us/ROLE/id_full_admin); users may be configured with either form.
ROLE_IDS = {
    "Full_Admin": "id_full_admin",
    "User_Admin": "id_user_admin",
    "Device_Admin": "id_device_admin",
    "Readonly_Admin": "id_readonly_admin",
}
FULL_ADMIN_ROLES = frozenset({"Full_Admin", "id_full_admin"})
# The authorizations API takes Full, User and Device admins; read-only admins are refused.
ADMIN_ROLES = FULL_ADMIN_ROLES | {"User_Admin", "Device_Admin", "id_user_admin", "id_device_admin"}
ROTATE_MODES = ("never", "always", "grace", "reuse-kills-family")
EXPIRY_MODES = ("sliding", "fixed", "sliding-daily")
FAULT_KINDS = frozenset(
    {
        "status",
        "delay",
        "html",
        "malformed",
        "truncated",
        "incomplete",
        "huge",
        "drop",
        "drop_after_commit",
        "trickle",
        "redirect",
    }
)
# Faults that are about the connection rather than the answer: each front end (the HTTP app,
# the in-process transport) carries them out in its own way.
WIRE_FAULTS = frozenset({"drop", "drop_after_commit", "trickle"})
# Policy fields whose default is None: the control API cannot take their type from the value.
OPTIONAL_POLICY_FIELDS = frozenset({"token_limit"})

# Webex's fixed texts in its error envelope.
MSG_400 = "The request could not be understood by the server due to malformed syntax."
MSG_401 = "The request requires a valid access token set in the Authorization request header."
MSG_403 = (
    "The server understood the request, but refused to fulfill it because the access token is "
    "missing required scopes or the user is missing required roles or licenses."
)
MSG_404 = "The requested resource could not be found."
# Every refused refresh token gets this one description, whatever the reason: Webex documents
# no wording that tells an expired grant from a revoked one, so the emulator must not either
# (RFC 6749 section 5.2's definition of invalid_grant, less the part about redirect URIs).
REFRESH_REFUSED = (
    "The provided refresh token is invalid, expired, revoked, or was issued to another client."
)
TOKEN_LIMIT_REACHED = "The user holds too many active tokens."
BLOCKED_BY_ADMIN = "your administrator denied access to the integration"  # Webex's page says so
# What Webex's verification page shows when the integration lacks its device helper redirect
# URIs (reported by users of the device grant; the poll just stays pending).
HELPER_PAGE_ERROR = "We've encountered an error. Try again later."

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


def fp(value: str) -> str:
    """Ledger fingerprint: correlates requests without storing the secret itself."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def b64_id(kind: str, raw: str) -> str:
    """A Webex REST id: base64 of `ciscospark://us/<KIND>/<raw>`, unpadded."""
    return base64.b64encode(f"ciscospark://us/{kind}/{raw}".encode()).decode().rstrip("=")


@dataclass
class Integration:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: list[str]
    scopes: list[str]
    name: str = "Emulated integration"
    blocked: bool = False
    # Secrets accepted besides `client_secret`, as while a developer rotates the secret: the
    # control API adds and revokes them (Webex's portal shows one secret at a time).
    extra_secrets: list[str] = field(default_factory=list, repr=False)

    def accepts(self, secret: str) -> bool:
        held = [self.client_secret, *self.extra_secrets]
        # Every one compared, so the time taken does not say which matched.
        return sum(secrets.compare_digest(h.encode(), secret.encode()) for h in held) > 0


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
    client_secret: str = field(repr=False)
    scopes: list[str]
    authorized_org_uuids: list[str]
    name: str = "Emulated service app"


@dataclass
class Policy:
    """Where Webex is undocumented, a switch; the defaults are the best-supported reading."""

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
    # Refuse a grant request that would give a user more live access tokens for one
    # integration than this (tokenlimit_reached); None: no limit.
    token_limit: int | None = None
    revoke_on_block: bool = True  # blocking an integration ends its existing grants
    revoke_on_admin_loss: bool = False  # losing Full Admin ends the user's grants
    revoke_on_org_change: bool = False  # moving to another org ends the user's grants

    def validate(self) -> None:
        if self.rotate not in ROTATE_MODES:
            raise ValueError(f"rotate must be one of {', '.join(ROTATE_MODES)}")
        if self.refresh_expiry not in EXPIRY_MODES:
            raise ValueError(f"refresh_expiry must be one of {', '.join(EXPIRY_MODES)}")
        for name in ("access_ttl", "refresh_ttl", "code_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        limit = self.token_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValueError("token_limit must be a whole number, or null for no limit")
        if limit is not None and limit < 0:
            raise ValueError("token_limit must not be negative")


@dataclass
class Code:
    value: str = field(repr=False)
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
    refresh_token: str = field(repr=False)
    refresh_expires_at: float
    created: float
    last_reset_at: float
    revoked: bool = False
    revoked_by: str = ""  # the cause the ledger names once the grant is refused (causes.py)
    # sliding-daily: the access token a refresh within 24 h answers with again
    cached_access: str | None = field(default=None, repr=False)
    last_refresh_at: float | None = None
    app_name: str = ""


@dataclass
class AccessToken:
    id: str
    value: str = field(repr=False)
    grant_id: str | None
    client_id: str
    user_uuid: str | None
    scopes: list[str]
    expires_at: float
    created: float
    revoked: bool = False
    bot: bool = False
    revoked_by: str = ""


@dataclass
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    scopes: list[str]
    expires_at: float
    interval: int = 5  # what the client was told; raised by 5 s at every slow_down
    approved_by: str | None = None
    denied: bool = False
    last_poll: float | None = None


@dataclass
class Fault:
    endpoint: str  # endpoint name or "*"
    kind: str  # one of FAULT_KINDS
    count: int = 1
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    body: str = "envelope"  # status faults: envelope | empty; redirect faults: the Location
    error: str | None = None  # status faults: the OAuth error code the envelope names


@dataclass
class Reply:
    """An answer: `body` is a dict or list (JSON), str (HTML), bytes (raw JSON) or None (empty).

    The router renders it to bytes with complete headers; `wire` then names a connection-level
    fault (drop, drop_after_commit, trickle) that the front end carries out after the headers.
    """

    status: int
    body: Any = field(default=None, repr=False)  # token answers and redirects carry secrets
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    wire: Fault | None = None
