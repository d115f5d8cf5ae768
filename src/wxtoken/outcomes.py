"""What the manager records after each attempt: the domain rules a store just writes down.

Pure functions from the record read under the lock (and the clock) to the record to store, so
the rules for generations, states and failures live in one place, whatever the backend:

- a new token starts a new generation in state ok, with failures forgotten;
- a rejected or expired grant keeps its record and is marked login_required (never deleted);
- a transient failure counts up and remembers its message and exit code, stamped when it
  happened, so a process that queued behind it can report it instead of repeating it.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import EXIT_UNAVAILABLE, OAuthError, StorageError, WebexUnavailable, WxtokenError
from .identity import Identity
from .store import STATUS_LOGIN_REQUIRED, STATUS_OK, TokenRecord
from .token import Token


def new_record(
    profile: str, token: Token, identity: Identity, generation: int, now: float
) -> TokenRecord:
    """The metadata of a token just obtained (the store fills in the fingerprints)."""
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
    )


def login_required(record: TokenRecord, reason: str, now: float) -> TokenRecord:
    return replace(record, status=STATUS_LOGIN_REQUIRED, status_reason=reason, last_attempt_at=now)


def failed(record: TokenRecord, exc: WxtokenError, now: float) -> TokenRecord:
    return replace(
        record,
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
