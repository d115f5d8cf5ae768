"""Token: what Webex gave us, with absolute expiries, and how fresh it is at a given moment.

Pure: no I/O and no clock of its own; every decision takes `now` (epoch seconds, UTC).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ._local import DEFAULT_MIN_VALID
from .errors import MalformedResponse

# Access tokens are refreshed when they have less than DEFAULT_MIN_VALID (300 s) left unless the
# caller asks for more. Five minutes covers a slow script run and clock skew between hosts, while
# staying far below Webex's shortest observed lifetime (12 h), so it never causes a refresh loop.
# The value lives in _local because the `wxtoken token` hot path needs it too.

# Lifetimes beyond ten years are treated as bogus and clamped: golang/oauth2 clamps similarly,
# and a huge value must not overflow datetime or suppress every future refresh.
MAX_LIFETIME = 10 * 365 * 86400

# Webex reports lifetimes in whole seconds, counted from when it answered; we count from a
# clock reading taken before the request. Two readings of one unchanged expiry therefore differ
# by up to a second plus the round trip; differences below this are not a moved expiry.
EXPIRY_RESOLUTION = 5.0

# When Webex sends no usable expires_in, the access token is assumed to live this long: short
# enough that the next use soon asks again (and learns the real lifetime), long enough that a
# Webex that keeps sending junk is not asked more than every few minutes.
ASSUMED_ACCESS_LIFETIME = 600.0

# RFC 6750 §2.1 b64token: what a bearer token may contain. Anything else (a control character, a
# lone surrogate, a space) is refused before it is stored or printed.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_LENGTH = 8192
_SCOPE = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")


class TokenState(enum.Enum):
    """How fresh an access token is at a moment, for a requested margin."""

    FRESH = "fresh"  # access token valid for at least the requested margin
    STALE = "stale"  # still valid, but inside the margin: refresh before use
    EXPIRED = "expired"  # access token past its expiry


@dataclass(frozen=True)
class Token:
    """What Webex issued, with absolute expiries (epoch seconds); secrets stay out of reprs."""

    access_token: str = field(repr=False)
    access_expires_at: float
    refresh_token: str | None = field(repr=False)
    refresh_expires_at: float | None
    scopes: tuple[str, ...]
    obtained_at: float
    token_type: str = "Bearer"
    # What was odd about the answer that issued it (an unusable lifetime, taken as unknown);
    # kept with the record and shown by `status`.
    notes: tuple[str, ...] = ()

    def state(self, now: float, min_valid: float = DEFAULT_MIN_VALID) -> TokenState:
        left = self.access_expires_at - now
        if left <= 0:
            return TokenState.EXPIRED
        if left < min_valid:
            return TokenState.STALE
        return TokenState.FRESH

    def refresh_expired(self, now: float) -> bool:
        return self.refresh_token is None or (
            self.refresh_expires_at is not None and self.refresh_expires_at <= now
        )

    @classmethod
    def from_response(
        cls, data: Mapping[str, Any], requested_at: float, previous: Token | None = None
    ) -> Token:
        """Build a Token from a token-endpoint JSON body.

        `requested_at` is the clock reading taken before the request went out, so network delay
        can only make our idea of the expiry earlier, never later than Webex's.
        A missing or empty `refresh_token` keeps the previous one and its expiry (Cisco's own JS
        SDK does the same: "CI never sends a new refresh token").
        """
        access = _bearer(data.get("access_token"), "access_token")
        if access is None:
            raise MalformedResponse(
                "Webex's token response has no access_token",
                fix="retry later; if it persists, report the trackingId to Webex",
            )
        notes: list[str] = []
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise MalformedResponse(
                "Webex's token response has an unexpected token_type (not Bearer)",
                fix="retry later; if it persists, report the trackingId to Webex",
            )
        expires_in = parse_lifetime(data.get("expires_in"))
        if expires_in is None:
            expires_in = ASSUMED_ACCESS_LIFETIME
            notes.append(
                f"Webex sent no usable expires_in; the access token is assumed to expire "
                f"{ASSUMED_ACCESS_LIFETIME:g} s after it was issued"
            )
        refresh = data.get("refresh_token")
        refresh_expires_at: float | None
        if refresh not in (None, ""):
            refresh = _bearer(refresh, "refresh_token")
            assert refresh is not None
            raw_refresh_in = data.get("refresh_token_expires_in")
            refresh_in = parse_lifetime(raw_refresh_in)
            if refresh_in is None and raw_refresh_in is not None:
                notes.append(
                    "Webex sent an unusable refresh_token_expires_in; the refresh token's "
                    "expiry is unknown until Webex answers a refresh"
                )
            if refresh_in is not None:
                refresh_expires_at = requested_at + refresh_in
                if (
                    previous is not None
                    and previous.refresh_token == refresh
                    and previous.refresh_expires_at is not None
                    and abs(refresh_expires_at - previous.refresh_expires_at) < EXPIRY_RESOLUTION
                ):
                    # The same refresh token with the same horizon, seen through whole-second
                    # lifetimes and a round trip: keep the stored instant, so jitter never
                    # looks like a moved expiry (alerts key on it, trends compare it).
                    refresh_expires_at = previous.refresh_expires_at
            elif previous is not None and previous.refresh_token == refresh:
                refresh_expires_at = previous.refresh_expires_at
            else:
                refresh_expires_at = None
        elif previous is not None:
            refresh, refresh_expires_at = previous.refresh_token, previous.refresh_expires_at
        else:
            refresh, refresh_expires_at = None, None
        scope = data.get("scope")
        if isinstance(scope, str):
            # Only what a scope can be: the list is shown to people and compared, never run.
            scopes = tuple(s for s in scope.split() if _SCOPE.fullmatch(s))
        elif previous is not None:
            scopes = previous.scopes
        else:
            scopes = ()
        return cls(
            access_token=access,
            access_expires_at=requested_at + expires_in,
            refresh_token=refresh if isinstance(refresh, str) else None,
            refresh_expires_at=refresh_expires_at,
            scopes=scopes,
            obtained_at=requested_at,
            token_type="Bearer",
            notes=tuple(notes),
        )

    def with_refresh(self, refresh_token: str | None, refresh_expires_at: float | None) -> Token:
        return replace(self, refresh_token=refresh_token, refresh_expires_at=refresh_expires_at)


def parse_lifetime(value: Any) -> float | None:
    """A lifetime in seconds (ints, floats and numeric strings, as seen in the wild), clamped
    to MAX_LIFETIME; None when it is missing or unusable (zero, negative, NaN, not a number).

    An unusable lifetime is unknown, not fatal: the answer still carries new tokens, and with a
    rotating Webex, throwing them away would lose the grant.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        return None
    return float(min(value, MAX_LIFETIME))


def _bearer(value: Any, name: str) -> str | None:
    """A token string as RFC 6750 allows it, None when absent; refused when malformed."""
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_TOKEN_LENGTH
        or not _B64TOKEN.fullmatch(value)
    ):
        raise MalformedResponse(
            f"Webex's token response has a {name} that is not a bearer token (characters or a "
            "length no token has); nothing was stored",
            fix="retry later; if it persists, report the trackingId to Webex",
        )
    return value


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 with an explicit UTC offset (what `status --json` promises)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
