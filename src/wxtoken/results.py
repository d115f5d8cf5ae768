"""What the manager's operations return: typed results that the CLI, keeper and library render.

Plain data with no behaviour beyond a JSON view; the CLI's `render` module decides how a person
sees them. Secret-valued fields are kept out of reprs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .identity import Identity
from .store import TokenRecord
from .token import Token, iso


@dataclass(frozen=True)
class RoleNeed:
    """A role the profile's scopes need, and whether people/me shows it (None: not reported)."""

    role: str
    held: bool | None


@dataclass(frozen=True)
class RefreshResult:
    """The token after a refresh request: whether one was sent, and whether Webex rotated the
    refresh token (then `last_export` is the hand-off whose copy is now stale, if any)."""

    token: Token = field(repr=False)
    refreshed: bool
    rotated: bool = False
    last_export: Mapping[str, Any] | None = None
    record: TokenRecord | None = None  # the stored record after a refresh
    older_secret: bool = False  # Webex took only the older of two client secrets


@dataclass(frozen=True)
class LoginResult:
    """A completed sign-in or code exchange: what was stored and what Webex granted."""

    record: TokenRecord
    requested_scopes: tuple[str, ...]
    granted_scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    warnings: tuple[str, ...]

    def as_json(self, profile: str, store: str) -> dict[str, Any]:
        ident = self.record.identity
        return {
            "profile": profile,
            "user": ident.email,
            "display_name": ident.display_name,
            "org_id": ident.org_id,
            "requested_scopes": list(self.requested_scopes),
            "granted_scopes": list(self.granted_scopes),
            "missing_scopes": list(self.missing_scopes),
            "access_expires_at": iso(self.record.access_expires_at),
            "refresh_expires_at": iso(self.record.refresh_expires_at),
            "store": store,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class VerifyResult:
    """What Webex says about the stored grant: who it belongs to and whether it has every scope
    the profile needs (`ok`)."""

    profile: str
    identity: Identity
    access_expires_at: float
    scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    roles: tuple[RoleNeed, ...] = ()

    @property
    def ok(self) -> bool:
        """Every scope granted and no needed role known to be missing."""
        return not self.missing_scopes and not any(r.held is False for r in self.roles)

    def as_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "user": self.identity.email,
            "display_name": self.identity.display_name,
            "org_id": self.identity.org_id,
            "access_expires_at": iso(self.access_expires_at),
            "scopes": list(self.scopes),
            "missing_scopes": list(self.missing_scopes),
            "roles": [{"role": r.role, "held": r.held} for r in self.roles],
            "ok": self.ok,
        }


@dataclass(frozen=True)
class HandOff:
    """What a recorder's data source needs; the export is recorded as an event (never values)."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    refresh_expires_at: float | None = None
    access_token: str = field(default="", repr=False)
