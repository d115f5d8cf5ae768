"""Whether a refresh is still needed once the lock is held: one pure rule, every reason."""

from __future__ import annotations

import pytest

from wxtoken.grants import ClientCredentials, CodeGrant, RefreshGrant
from wxtoken.reasons import Forced, Needed, Rejected, Scheduled, still_needed
from wxtoken.token import Token

NOW = 1_800_000_000.0


def tok(left: float, obtained_ago: float = 3600.0, access: str = "AT-1") -> Token:
    return Token(
        access_token=access,
        access_expires_at=NOW + left,
        refresh_token="RT-1",
        refresh_expires_at=NOW + 86400 * 60,
        scopes=("spark:kms",),
        obtained_at=NOW - obtained_ago,
    )


@pytest.mark.parametrize(
    ("reason", "generation", "token", "expected"),
    [
        # A caller that needs 300 s: fresh enough means no refresh.
        (Needed(300, seen_generation=1), 1, tok(3600), False),
        (Needed(300, seen_generation=1), 1, tok(100), True),
        # Someone refreshed while we waited (generation moved on): use theirs, even short.
        (Needed(300, seen_generation=1), 2, tok(100), False),
        # ... unless theirs has already expired.
        (Needed(300, seen_generation=1), 2, tok(-1), True),
        (Needed(300), 5, tok(100), True),
        # More than a token's lifetime, moments after it was obtained: not again and again.
        (Needed(10**9), 1, tok(3600, obtained_ago=5), False),
        (Needed(float("inf")), 1, tok(3600, obtained_ago=5), False),
        (Needed(10**9), 1, tok(3600, obtained_ago=61), True),
        (Needed(10**9), 1, tok(-1, obtained_ago=5), True),
        # The keeper refreshes only if nobody did since it looked.
        (Scheduled(3), 3, tok(3600), True),
        (Scheduled(3), 4, tok(3600), False),
        # An operator's refresh happens, unless one was made moments ago.
        (Forced(), 1, tok(3600, obtained_ago=1), True),
        (Forced(unless_newer_than=60), 1, tok(3600, obtained_ago=10), False),
        (Forced(unless_newer_than=60), 1, tok(3600, obtained_ago=61), True),
        (Forced(unless_newer_than=60), 1, tok(-5, obtained_ago=10), True),
        # Webex refused this access token: refresh unless the store already holds another.
        (Rejected("AT-1"), 1, tok(3600, access="AT-1"), True),
        (Rejected("AT-1"), 1, tok(3600, access="AT-2"), False),
        (Rejected("AT-1", min_valid=60), 1, tok(30, access="AT-2"), True),
    ],
)
def test_still_needed(reason: object, generation: int, token: Token, expected: bool) -> None:
    assert still_needed(reason, generation, token, NOW) is expected  # type: ignore[arg-type]


def test_reasons_and_grants_keep_secrets_out_of_reprs() -> None:
    texts = [
        repr(Rejected("AT-CANARY-123")),
        repr(RefreshGrant("RT-CANARY-123", previous=tok(1))),
        repr(CodeGrant("CODE-CANARY-123", "http://127.0.0.1:1/cb", "VERIFIER-CANARY-123")),
        repr(ClientCredentials("C1", "CS-CANARY-123")),
    ]
    assert not any("CANARY" in t for t in texts), texts


def test_only_the_refresh_grant_may_be_replayed() -> None:
    assert RefreshGrant("r").replay_safe
    assert not CodeGrant("c", "http://127.0.0.1:1/cb").replay_safe
    creds = ClientCredentials("C1", "S1")
    form = CodeGrant("c", "http://127.0.0.1:1/cb", "v" * 43).form(creds)
    assert form["grant_type"] == "authorization_code" and form["code_verifier"] == "v" * 43
    assert RefreshGrant("r").form(creds)["grant_type"] == "refresh_token"
