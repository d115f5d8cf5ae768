"""Ways of getting tokens from Webex's token endpoint: one small type per grant.

Each grant builds its request, says whether sending it again is safe, and parses Webex's answer
into a `Token`. The client sends a grant (retrying only what is safe to replay); the manager
decides when to send one. A new way of getting tokens (device code, service-app minting) is a
new type here that satisfies `Grant`; nothing else needs to learn its form fields. A grant
whose request is not a form of client credentials (minting posts JSON with the minter's bearer
token) also builds it whole (`BuildsRequest.request`), and the client sends that instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from . import oauth
from .device import DEVICE_GRANT_TYPE, DEVICE_TOKEN_PATH
from .oauth_errors import GRANT_MINT
from .token import Token

TOKEN_PATH = "/v1/access_token"
# Form fields whose values are secrets: cut out of anything the server echoes back.
SECRET_FIELDS = frozenset(
    {"client_secret", "refresh_token", "code", "code_verifier", "device_code"}
)


@dataclass(frozen=True)
class ClientCredentials:
    """The integration's client id and secret, as the token endpoint wants them."""

    client_id: str
    client_secret: str = field(repr=False)


class Grant(Protocol):
    """What the client needs to know to send one token request and read its answer."""

    @property
    def grant_type(self) -> str:
        """The `grant_type` form value; also names the grant in logs and the ledger."""
        ...

    @property
    def replay_safe(self) -> bool:
        """Whether the client may send it again after a failure that may have reached Webex."""
        ...

    @property
    def path(self) -> str:
        """The endpoint path under the base URL."""
        ...

    @property
    def basic_auth(self) -> bool:
        """Send the client credentials as HTTP Basic instead of form fields."""
        ...

    def form(self, credentials: ClientCredentials) -> dict[str, str]:
        """The form fields of the request (with the credentials unless `basic_auth`)."""
        ...

    def parse(self, data: Mapping[str, Any], requested_at: float) -> Token:
        """The token in a 200 answer; `requested_at` is the clock before the request went out."""
        ...


@dataclass(frozen=True)
class GrantRequest:
    """A request body that is not a form of client credentials: minting posts JSON with the
    minter's bearer token. `secrets` are cut out of anything the server echoes back."""

    content: bytes = field(repr=False)
    content_type: str
    bearer: str | None = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


@runtime_checkable
class BuildsRequest(Protocol):
    """A grant that builds its whole request (`request`) instead of the client encoding
    `form` as application/x-www-form-urlencoded; the client stays generic either way."""

    def request(self, credentials: ClientCredentials) -> GrantRequest: ...


@dataclass(frozen=True)
class RefreshGrant:
    """grant_type=refresh_token: safe to resend, since a refresh token survives a lost answer
    (or, if Webex rotated it, the resend fails with invalid_grant and nothing is lost locally).
    A missing refresh token in the answer keeps the previous one and its expiry."""

    refresh_token: str = field(repr=False)
    previous: Token | None = field(default=None, repr=False)
    grant_type: str = "refresh_token"
    replay_safe: bool = True
    path: str = TOKEN_PATH
    basic_auth: bool = False

    def form(self, credentials: ClientCredentials) -> dict[str, str]:
        return oauth.prepare_refresh_token_request(
            credentials.client_id, credentials.client_secret, self.refresh_token
        )

    def parse(self, data: Mapping[str, Any], requested_at: float) -> Token:
        return Token.from_response(data, requested_at, previous=self.previous)


@dataclass(frozen=True)
class CodeGrant:
    """grant_type=authorization_code: sent exactly once. RFC 6749 §10.5 lets a server revoke
    every token issued from a code that is presented twice, so a retry could destroy the grant
    it was meant to obtain; a failed exchange means starting the sign-in again."""

    code: str = field(repr=False)
    redirect_uri: str
    code_verifier: str | None = field(default=None, repr=False)
    grant_type: str = "authorization_code"
    replay_safe: bool = False
    path: str = TOKEN_PATH
    basic_auth: bool = False

    def form(self, credentials: ClientCredentials) -> dict[str, str]:
        return oauth.prepare_code_token_request(
            credentials.client_id,
            credentials.client_secret,
            self.code,
            self.redirect_uri,
            self.code_verifier,
        )

    def parse(self, data: Mapping[str, Any], requested_at: float) -> Token:
        return Token.from_response(data, requested_at)


@dataclass(frozen=True)
class MintGrant:
    """A service app's tokens minted for one org: `POST /v1/applications/{id}/token` with JSON
    `clientId`, `clientSecret` and `targetOrgId`, authorized by the minter's access token (an
    integration or another service app whose token carries spark:applications_token).

    Not replay-safe: every mint creates a new grant at Webex. If an answer is lost, the grant
    it carried stays alive there with a refresh token wxtoken never saw (so cannot revoke) and
    counts against the token limit; a resend would add another. A failed mint is tried again by
    the next command or the keeper's next pass, after a person or the backoff has waited.
    """

    app_id: str
    target_org_id: str
    minter_token: str = field(repr=False)
    grant_type: str = GRANT_MINT
    replay_safe: bool = False
    basic_auth: bool = False

    @property
    def path(self) -> str:
        return f"/v1/applications/{quote(self.app_id, safe='')}/token"

    def form(self, credentials: ClientCredentials) -> dict[str, str]:
        return {
            "clientId": credentials.client_id,
            "clientSecret": credentials.client_secret,
            "targetOrgId": self.target_org_id,
        }

    def request(self, credentials: ClientCredentials) -> GrantRequest:
        return GrantRequest(
            content=json.dumps(self.form(credentials)).encode(),
            content_type="application/json",
            bearer=self.minter_token,
            secrets=(credentials.client_secret, self.minter_token),
        )

    def parse(self, data: Mapping[str, Any], requested_at: float) -> Token:
        return Token.from_response(data, requested_at)


# --- the device grant (RFC 8628 as Webex serves it) ---------------------------------------

_DEFAULT_INTERVAL = 5  # RFC 8628 §3.2, when the answer names none


@dataclass(frozen=True)
class DeviceAuthorization:
    """Webex's answer to /v1/device/authorize: what the person types where, and for how long."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> DeviceAuthorization:
        """The fields, checked for type; raises ValueError naming what is wrong."""

        def text(name: str, required: bool = True) -> str | None:
            value = data.get(name)
            if isinstance(value, str) and value and len(value) <= 2048:
                return value
            if value is None and not required:
                return None
            raise ValueError(f"{name} is missing or not a string")

        def seconds(name: str, default: int | None) -> int:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 86400:
                raise ValueError(f"{name} is missing or not a whole number of seconds")
            return value

        return cls(
            device_code=str(text("device_code")),
            user_code=str(text("user_code")),
            verification_uri=str(text("verification_uri")),
            verification_uri_complete=text("verification_uri_complete", required=False),
            expires_in=seconds("expires_in", None),
            interval=seconds("interval", _DEFAULT_INTERVAL),
        )


@dataclass(frozen=True)
class DeviceCodeGrant:
    """grant_type=device_code, one poll of /v1/device/token with HTTP Basic credentials.

    Not replay-safe for the client's retry loop: the sign-in's own loop decides when to poll
    again (at the interval, slower after slow_down or a Retry-After), so a resend by the client
    would poll faster than Webex allows, and a lost answer with the tokens cannot be repeated.
    """

    device_code: str = field(repr=False)
    grant_type: str = DEVICE_GRANT_TYPE
    replay_safe: bool = False
    path: str = DEVICE_TOKEN_PATH
    basic_auth: bool = True

    def form(self, credentials: ClientCredentials) -> dict[str, str]:
        return {
            "grant_type": self.grant_type,
            "device_code": self.device_code,
            "client_id": credentials.client_id,
        }

    def parse(self, data: Mapping[str, Any], requested_at: float) -> Token:
        return Token.from_response(data, requested_at)
