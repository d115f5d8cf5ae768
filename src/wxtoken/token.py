"""Token: what Webex gave us, with absolute expiries, and how fresh it is at a given moment.

Pure: no I/O and no clock of its own; every decision takes `now` (epoch seconds, UTC).
"""

from __future__ import annotations

import enum
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
        access = data.get("access_token")
        if not isinstance(access, str) or not access.strip():
            raise MalformedResponse(
                "Webex's token response has no access_token",
                fix="retry later; if it persists, report the trackingId to Webex",
            )
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise MalformedResponse(
                "Webex's token response has an unexpected token_type (not Bearer)",
                fix="retry later; if it persists, report the trackingId to Webex",
            )
        expires_in = parse_lifetime(data.get("expires_in"), "expires_in", required=True)
        assert expires_in is not None
        refresh = data.get("refresh_token")
        refresh_expires_at: float | None
        if isinstance(refresh, str) and refresh.strip():
            refresh_in = parse_lifetime(
                data.get("refresh_token_expires_in"), "refresh_token_expires_in", required=False
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
        elif refresh in (None, ""):
            if previous is not None:
                refresh, refresh_expires_at = previous.refresh_token, previous.refresh_expires_at
            else:
                refresh, refresh_expires_at = None, None
        else:
            raise MalformedResponse(
                "Webex's token response has a refresh_token that is not a string",
                fix="retry later; if it persists, report the trackingId to Webex",
            )
        scope = data.get("scope")
        if isinstance(scope, str):
            scopes = tuple(scope.split())
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
        )

    def with_refresh(self, refresh_token: str | None, refresh_expires_at: float | None) -> Token:
        return replace(self, refresh_token=refresh_token, refresh_expires_at=refresh_expires_at)


def parse_lifetime(value: Any, name: str, *, required: bool) -> float | None:
    """Validate a lifetime in seconds: ints, floats and numeric strings (seen in the wild)."""
    if value is None:
        if required:
            raise MalformedResponse(
                f"Webex's token response has no {name}",
                fix="retry later; if it persists, report the trackingId to Webex",
            )
        return None
    if isinstance(value, bool):
        raise MalformedResponse(f"Webex's token response has a non-numeric {name}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise MalformedResponse(f"Webex's token response has a non-numeric {name}") from None
    if not isinstance(value, int | float) or value != value:  # NaN check
        raise MalformedResponse(f"Webex's token response has a non-numeric {name}")
    if value <= 0:
        raise MalformedResponse(f"Webex's token response has a non-positive {name} ({value})")
    return float(min(value, MAX_LIFETIME))


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 with an explicit UTC offset (what `status --json` promises)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def human_left(seconds: float) -> str:
    """'13d 23h', '5h 02m', '42s' or 'expired 3h ago': short enough for a table cell."""
    if seconds <= 0:
        return f"expired {human_left(-seconds)} ago" if seconds < 0 else "expired"
    s = int(seconds)
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
