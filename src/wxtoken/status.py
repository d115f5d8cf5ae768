"""One classification of a profile's state, used by `status`, the keeper's metrics and alerts.

From stored metadata only (no key, no network), so monitoring works without secrets:

    ok              tokens stored, refresh token not near its end
    warning         refreshing fails for a cause Webex named (a token limit, another org), the
                    refresh token expires within the warning window, the recorder's copy is
                    stale, or the last probe found the grant degraded (a scope, a role, the org)
    login_required  no tokens, refresh token expired, or Webex rejected the grant (at a refresh
                    or a probe)

The worst state across profiles is `status`'s exit code (0, 3, 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import causes
from .errors import EXIT_ATTENTION, EXIT_LOGIN_REQUIRED, EXIT_OK
from .profile import DEFAULT_BASE_URL, Profile
from .store import STATUS_LOGIN_REQUIRED, Probe, RecorderCopy, TokenRecord, TokenStore
from .token import iso

STATE_OK = "ok"
STATE_WARNING = "warning"
STATE_LOGIN_REQUIRED = "login_required"
STATES = (STATE_OK, STATE_WARNING, STATE_LOGIN_REQUIRED)
_RANK = {s: i for i, s in enumerate(STATES)}
_EXIT = {
    STATE_OK: EXIT_OK,
    STATE_WARNING: EXIT_ATTENTION,
    STATE_LOGIN_REQUIRED: EXIT_LOGIN_REQUIRED,
}

# A refresh token this close to its end needs a person soon: two weeks leaves time to schedule a
# sign-in and update the recorder, well inside Webex's 60-90 day lifetime.
DEFAULT_WARN_DAYS = 14.0
DAY = 86400.0


def classify(
    record: TokenRecord | None, now: float, warn_days: float = DEFAULT_WARN_DAYS
) -> tuple[str, str | None]:
    """(state, reason) of a profile from its token record; the reason is None when ok."""
    if record is None:
        return STATE_LOGIN_REQUIRED, "no tokens: never signed in, or logged out"
    if record.status == STATUS_LOGIN_REQUIRED:
        return STATE_LOGIN_REQUIRED, record.status_reason or "Webex rejected the grant"
    if _lapsed(record, now):
        return STATE_LOGIN_REQUIRED, causes.CAUSES["expired"].text
    if record.refresh_fp is None and record.access_expires_at <= now:
        return STATE_LOGIN_REQUIRED, "the access token expired and there is no refresh token"
    if record.failures and record.cause is not None:
        described = causes.describe(record.cause, record.profile)
        if described is not None:
            return STATE_WARNING, f"refreshing fails: {described[0]}; fix: {described[1]}"
    if record.copy.state == "stale":
        return STATE_WARNING, (
            f"the recorder's copy of the refresh token is stale ({record.copy.reason}); hand it "
            f"over again: wxtoken export -p {record.profile}"
        )
    if record.probe is not None and record.probe.verdict == "degraded":
        described = causes.describe(record.probe.cause, record.profile)
        text = described[0] if described else "Webex refused part of what the grant needs"
        return STATE_WARNING, f"{text} (probe {iso(record.probe.at)})"
    if record.refresh_expires_at is not None and record.refresh_expires_at - now < warn_days * DAY:
        return STATE_WARNING, f"the refresh token expires within {warn_days:g} days"
    return STATE_OK, None


def cause_of(record: TokenRecord | None, now: float) -> str | None:
    """The cause `status` names: the one recorded, or `expired` once the refresh token is past
    the expiry Webex stated (no refresh has asked Webex yet; the keeper's next one will)."""
    if record is None:
        return None
    if record.cause is None and record.status != STATUS_LOGIN_REQUIRED and _lapsed(record, now):
        return "expired"
    return record.cause


def _lapsed(record: TokenRecord, now: float) -> bool:
    return record.refresh_expires_at is not None and record.refresh_expires_at <= now


def worst_state(states: list[str]) -> str:
    return max(states, key=lambda s: _RANK[s], default=STATE_OK)


def exit_code(states: list[str]) -> int:
    """`status`'s exit code: the worst state; no profiles at all means a sign-in is needed."""
    return _EXIT[worst_state(states)] if states else EXIT_LOGIN_REQUIRED


@dataclass(frozen=True)
class ProfileStatus:
    """A profile's state with everything `status` shows; built without the key."""

    profile: str
    state: str
    reason: str | None
    access_expires_at: float | None
    refresh_expires_at: float | None
    scopes: tuple[str, ...]
    requested_scopes: tuple[str, ...]
    org_id: str | None
    user: str | None
    storage: str
    key_source: str | None
    failures: int
    last_error: str | None
    last_success_at: float | None
    base_url: str = DEFAULT_BASE_URL
    notes: tuple[str, ...] = ()
    cause: str | None = None
    probe: Probe | None = None
    copy: RecorderCopy = field(default_factory=RecorderCopy)
    trend: str = "unknown"
    now: float = 0.0  # when this status was taken (for the probe's age)
    client_secrets: int = 1  # two while the integration's secret is rotated
    secret_added_at: float | None = None  # when the newest of two was added
    older_secret_used_at: float | None = None  # Webex refused the newest since it was added

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        if self.access_expires_at is None:
            return ()
        return tuple(s for s in self.requested_scopes if s not in self.scopes)

    def as_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "state": self.state,
            "reason": self.reason,
            "access_expires_at": iso(self.access_expires_at),
            "refresh_expires_at": iso(self.refresh_expires_at),
            "scopes": list(self.scopes),
            "missing_scopes": list(self.missing_scopes),
            "org_id": self.org_id,
            "user": self.user,
            "storage": self.storage,
            "key_source": self.key_source,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_success_at": iso(self.last_success_at),
            "base_url": self.base_url,
            "notes": list(self.notes),
            "cause": self.cause,
            "probe": None
            if self.probe is None
            else {
                "at": iso(self.probe.at),
                "age_seconds": round(self.now - self.probe.at),
                "verdict": self.probe.verdict,
                "cause": self.probe.cause,
                "endpoint": self.probe.endpoint,
                "detail": self.probe.detail,
            },
            "recorder_copy": {
                "state": self.copy.state,
                "exported_at": iso(self.copy.exported_at),
                "format": self.copy.format,
                "stale_since": iso(self.copy.stale_since),
                "reason": self.copy.reason,
            },
            "expiry_trend": self.trend,
            "client_secrets": {
                "held": self.client_secrets,
                "newest_added_at": iso(self.secret_added_at),
                "older_used_at": iso(self.older_secret_used_at),
            },
        }


def profile_status(
    store: TokenStore, profile: Profile, now: float, warn_days: float = DEFAULT_WARN_DAYS
) -> ProfileStatus:
    """A profile's status from stored metadata only: no key, no network."""
    record = store.token_record(profile.name)
    state, reason = classify(record, now, warn_days)
    held, added = store.secrets_held(profile.name)
    fell_back = None
    if held > 1:
        used = store.events(profile.name, ("client_secret_fallback",), limit=1)
        if used and used[0].at >= (added or 0):
            fell_back = used[0].at
    return ProfileStatus(
        profile=profile.name,
        state=state,
        reason=reason,
        access_expires_at=record.access_expires_at if record else None,
        refresh_expires_at=record.refresh_expires_at if record else None,
        scopes=record.scopes if record else (),
        requested_scopes=profile.scopes,
        org_id=record.identity.org_id if record else None,
        user=record.identity.email if record else None,
        storage=store.location,
        key_source=store.key_source(),
        failures=record.failures if record else 0,
        last_error=record.last_error if record else None,
        last_success_at=record.last_success_at if record else None,
        base_url=profile.base_url,
        notes=record.notes if record else (),
        cause=cause_of(record, now),
        probe=record.probe if record else None,
        copy=record.copy if record else RecorderCopy(),
        trend=record.trend.state if record else "unknown",
        now=now,
        client_secrets=held,
        secret_added_at=added,
        older_secret_used_at=fell_back,
    )
