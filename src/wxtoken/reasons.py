"""Why a refresh is asked for, and whether it is still needed once the profile's lock is held.

Callers queue for a profile's refresh lock; by the time they hold it, another thread or process
may have refreshed already. Each reason carries what its caller knew, and `still_needed` decides
from the freshly read record, so the single-flight rule is one pure function with a fixed `now`.

    Needed     a caller wants a token with `min_valid` seconds left (wxtoken token, the library)
    Rejected   Webex answered 401 to this access token (WebexAuth)
    Scheduled  the keeper's timetable says so, if nobody refreshed since it looked
    Forced     an operator asked (wxtoken refresh); optionally not if done moments ago
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._local import DEFAULT_MIN_VALID
from .token import Token, TokenState

# A token obtained less than this long ago is not refreshed again for want of validity: asking
# for more than a token's whole lifetime (--min-valid above it, or 1e999 through the keeper's
# socket) would otherwise refresh on every call. It is handed out, with a warning, until it
# expires. The same span makes a burst of `wxtoken refresh` calls cost one request.
RECENT = 60.0


@dataclass(frozen=True)
class Needed:
    """A caller needs `min_valid` seconds; it read `seen_generation` before queueing.

    If the generation moved on while it waited, someone else refreshed: their token is used
    even when it cannot meet `min_valid`, because a second refresh would only return the same
    lifetime again (and with a rotating refresh token, would race the first).
    """

    min_valid: float = DEFAULT_MIN_VALID
    seen_generation: int | None = None


@dataclass(frozen=True)
class Rejected:
    """Webex refused `access_token` (401): refresh unless the store already holds a newer one."""

    access_token: str = field(repr=False)
    min_valid: float = 60.0


@dataclass(frozen=True)
class Scheduled:
    """The keeper's timetable: refresh only if the stored generation is still `generation`, so a
    refresh another process made a moment ago is never repeated."""

    generation: int


@dataclass(frozen=True)
class Forced:
    """An operator asked. With `unless_newer_than`, a token obtained less than that many seconds
    ago is kept, so a burst of scripted `wxtoken refresh` calls costs one request."""

    unless_newer_than: float | None = None


RefreshReason = Needed | Rejected | Scheduled | Forced


def still_needed(reason: RefreshReason, generation: int, token: Token, now: float) -> bool:
    """Whether to send a refresh, given the record read under the lock."""
    if isinstance(reason, Scheduled):
        return generation == reason.generation
    if isinstance(reason, Forced):
        if reason.unless_newer_than is None:
            return True
        recent = 0 <= now - token.obtained_at < reason.unless_newer_than
        return not (recent and token.state(now, 0) is TokenState.FRESH)
    if isinstance(reason, Rejected):
        replaced = token.access_token != reason.access_token
        return not (replaced and token.state(now, reason.min_valid) is TokenState.FRESH)
    if token.state(now, reason.min_valid) is TokenState.FRESH:
        return False
    if 0 <= now - token.obtained_at < RECENT and token.state(now, 0) is not TokenState.EXPIRED:
        return False
    moved_on = reason.seen_generation is not None and generation != reason.seen_generation
    return not (moved_on and token.state(now, 0) is not TokenState.EXPIRED)
