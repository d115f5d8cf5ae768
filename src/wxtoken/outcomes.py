"""What the manager records after each attempt: the domain rules a store just writes down.

Pure functions from the record read under the lock (and the clock) to the record to store, so
the rules for generations, states and failures live in one place, whatever the backend:

- a new token starts a new generation in state ok, with failures forgotten;
- a rejected or expired grant keeps its record and is marked login_required (never deleted);
- a transient failure counts up and remembers its message and exit code, stamped when it
  happened, so a process that queued behind it can report it instead of repeating it;
- the recorder's copy turns stale when the refresh token it holds is no longer the stored one;
- the expiry trend is decided from observations of the refresh expiry at least a day apart.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import (
    EXIT_UNAVAILABLE,
    OAuthError,
    OrgMismatch,
    StorageError,
    WebexUnavailable,
    WxtokenError,
)
from .identity import Identity
from .store import STATUS_LOGIN_REQUIRED, STATUS_OK, ExpiryTrend, RecorderCopy, TokenRecord
from .token import EXPIRY_RESOLUTION, Token, iso

DAY = 86400.0


def new_record(
    profile: str,
    token: Token,
    identity: Identity,
    generation: int,
    now: float,
    *,
    previous: TokenRecord | None = None,
    refresh_fp: str | None = None,
    why: str = "",
) -> TokenRecord:
    """The metadata of a token just obtained (the store fills in the fingerprints).

    `previous` is the record it replaces and `refresh_fp` the new refresh token's fingerprint:
    they carry the recorder's copy (stale if it no longer matches, `why` says how) and the
    expiry trend forward.
    """
    copy = RecorderCopy()
    trend = ExpiryTrend()
    if previous is not None:
        copy = copy_after(previous.copy, refresh_fp, now, why)
        trend = previous.trend
    trend = observe_expiry(trend, now, token.refresh_expires_at)
    return TokenRecord(
        profile=profile,
        access_expires_at=token.access_expires_at,
        refresh_expires_at=token.refresh_expires_at,
        scopes=token.scopes,
        obtained_at=token.obtained_at,
        identity=identity,
        generation=generation,
        status=STATUS_OK,
        status_reason=None,
        access_fp=None,
        refresh_fp=None,
        last_attempt_at=now,
        last_success_at=now,
        notes=token.notes,
        copy=copy,
        trend=trend,
    )


def login_required(
    record: TokenRecord, reason: str, now: float, cause: str | None = None
) -> TokenRecord:
    return replace(
        record,
        status=STATUS_LOGIN_REQUIRED,
        status_reason=reason,
        cause=cause,
        last_attempt_at=now,
    )


def exported(record: TokenRecord, fmt: str, now: float) -> TokenRecord:
    """The recorder now holds the stored refresh token."""
    copy = RecorderCopy("current", exported_at=now, format=fmt, refresh_fp=record.refresh_fp)
    return replace(record, copy=copy)


def copy_after(copy: RecorderCopy, refresh_fp: str | None, now: float, why: str) -> RecorderCopy:
    """The recorder's copy once the stored refresh token is `refresh_fp`."""
    if copy.state != "current" or refresh_fp == copy.refresh_fp:
        return copy  # none stays none; stale stays stale (since when it first went stale)
    handed = iso(copy.exported_at) or "earlier"
    return replace(
        copy, state="stale", stale_since=now, reason=f"{why} after the export of {handed}"
    )


def observe_expiry(trend: ExpiryTrend, at: float, expiry: float | None) -> ExpiryTrend:
    """The trend after Webex stated `expiry` for the refresh token at `at`.

    Compared with an observation at least a day older: unmoved (within the reporting
    resolution) is fixed; moved forward by at least half the time between is slides; anything
    else says nothing yet. Webex's docs say it slides; a logged Contact Center refresh showed it
    did not; so wxtoken looks instead of assuming.
    """
    if expiry is None:
        return trend
    if trend.anchor_at is None or trend.anchor_expiry is None:
        return replace(trend, anchor_at=at, anchor_expiry=expiry)
    elapsed = at - trend.anchor_at
    if elapsed < DAY:
        return trend
    moved = expiry - trend.anchor_expiry
    if abs(moved) <= 2 * EXPIRY_RESOLUTION:
        state = "fixed"
    elif moved >= 0.5 * elapsed:
        state = "slides"
    else:
        state = "unknown"
    return ExpiryTrend(state, at, expiry)


def failed(
    record: TokenRecord, exc: WxtokenError, now: float, cause: str | None = None
) -> TokenRecord:
    """A refresh that failed and left the grant as it was; `cause` when Webex named one (a
    token limit), which `status` then shows until a refresh succeeds."""
    return replace(
        record,
        cause=cause,
        failures=record.failures + 1,
        last_error=exc.message,
        last_error_code=exc.exit_code,
        last_attempt_at=now,
    )


def failed_while_waiting(record: TokenRecord, queued_at: float) -> WxtokenError | None:
    """The failure another process's refresh met while this one queued for the lock, if any.

    Repeating a refresh that just failed would cost the caller another full retry budget and
    Webex another burst of requests, so the waiter reports what the refresher saw, with its
    exit code (5 for an unreachable Webex), instead.
    """
    if record.failures == 0 or record.last_attempt_at is None or record.last_attempt_at < queued_at:
        return None
    message = f"another wxtoken's refresh of {record.profile!r} just failed: {record.last_error}"
    if record.last_error_code == EXIT_UNAVAILABLE or record.last_error_code is None:
        return WebexUnavailable(
            message, fix="try again in a few minutes; check https://status.webex.com"
        )
    if record.last_error_code == StorageError.exit_code:
        return StorageError(message, fix=f"run `wxtoken refresh -p {record.profile}` to see it")
    return OAuthError(message, fix=f"run `wxtoken refresh -p {record.profile}` to see it")


def org_mismatch(profile: str, expected: str | None, returned: str | None) -> OrgMismatch | None:
    """A refresh answered with a token for another org than the grant's: refused, the stored
    grant untouched (a token for the wrong org would hand the recorder another company's
    calls). None when the org is unknown or the same."""
    if expected is None or returned == expected:
        return None
    return OrgMismatch(
        f"Webex answered the refresh of {profile!r} with a token for org {returned}, but the "
        f"grant belongs to org {expected}; the stored grant was left untouched",
        fix=f"check who signed in with `wxtoken verify -p {profile}`, then sign in as an admin "
        f"of the right org: `wxtoken login -p {profile}`",
    )
