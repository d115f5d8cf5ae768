"""Token: absolute expiries from responses, freshness at a given moment (pure)."""

from __future__ import annotations

import pytest

from wxtoken.durations import human_left
from wxtoken.errors import MalformedResponse, UsageError
from wxtoken.profile import (
    SCOPE_PRESETS,
    loopback_listen_target,
    parse_scopes,
    validate_base_url,
)
from wxtoken.token import (
    ASSUMED_ACCESS_LIFETIME,
    MAX_LIFETIME,
    Token,
    TokenState,
    iso,
)

T0 = 1_700_000_000.0
BODY = {
    "access_token": "AT",
    "expires_in": 1209599,
    "refresh_token": "RT",
    "refresh_token_expires_in": 7775999,
    "token_type": "Bearer",
    "scope": "spark:kms spark:people_read",
}


def test_from_response_uses_request_time() -> None:
    tok = Token.from_response(BODY, T0)
    assert tok.access_expires_at == T0 + 1209599
    assert tok.refresh_expires_at == T0 + 7775999
    assert tok.scopes == ("spark:kms", "spark:people_read")
    assert "AT" not in repr(tok) and "RT" not in repr(tok)


@pytest.mark.parametrize("missing", [None, "", {"x": 1}])
def test_missing_refresh_token_keeps_previous(missing: object) -> None:
    """No refresh_token, "" or null keeps the old one and its expiry."""
    prev = Token.from_response(BODY, T0)
    body = dict(BODY, access_token="AT2")
    body.pop("refresh_token_expires_in")
    if missing == {"x": 1}:
        body.pop("refresh_token")
    else:
        body["refresh_token"] = missing
    new = Token.from_response(body, T0 + 100, previous=prev)
    assert new.refresh_token == "RT" and new.refresh_expires_at == prev.refresh_expires_at


def test_same_refresh_token_without_expiry_keeps_expiry() -> None:
    prev = Token.from_response(BODY, T0)
    body = {k: v for k, v in BODY.items() if k != "refresh_token_expires_in"}
    assert Token.from_response(body, T0 + 5, prev).refresh_expires_at == prev.refresh_expires_at


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1209599", True),
        (-1, False),
        (0, False),
        (1e12, True),
        (None, False),
        ("abc", False),
        (True, False),
        (float("nan"), False),
    ],
)
def test_expires_in_validation(value: object, ok: bool) -> None:
    """Numeric strings accepted, huge clamped; anything else is unknown, never fatal: the answer
    still carries new tokens (with a rotating Webex, discarding them loses the grant)."""
    body = dict(BODY, expires_in=value)
    tok = Token.from_response(body, T0)
    assert tok.access_token == "AT" and tok.refresh_token == "RT"
    if ok:
        assert tok.access_expires_at <= T0 + MAX_LIFETIME and tok.notes == ()
    else:
        assert tok.access_expires_at == T0 + ASSUMED_ACCESS_LIFETIME
        assert any("expires_in" in n for n in tok.notes)


@pytest.mark.parametrize("value", [0, -5, "soon", float("nan"), True, [], "0"])
def test_unusable_refresh_lifetime_keeps_the_tokens_with_an_unknown_expiry(
    value: object,
) -> None:
    tok = Token.from_response(dict(BODY, refresh_token_expires_in=value), T0)
    assert tok.refresh_token == "RT" and tok.refresh_expires_at is None
    assert any("refresh_token_expires_in" in n for n in tok.notes)
    # A tiny but usable value is Webex's word, kept as it is: Webex, not wxtoken, decides
    # whether the grant is dead (the manager asks it anyway).
    assert Token.from_response(dict(BODY, refresh_token_expires_in=1), T0).refresh_expires_at == (
        T0 + 1
    )


@pytest.mark.parametrize(
    "token",
    [
        "AT\x1b]52;c;ZXZpbA==\x07",  # OSC 52: write to the clipboard
        "AT\ud800",  # a lone surrogate: cannot be stored or printed as UTF-8
        "AT with spaces",
        "AT\n",
        "x" * 9000,
    ],
)
def test_tokens_outside_the_bearer_syntax_are_refused(token: str) -> None:
    for field in ("access_token", "refresh_token"):
        with pytest.raises(MalformedResponse) as info:
            Token.from_response(dict(BODY, **{field: token}), T0)
        assert token not in str(info.value) and "AT" not in info.value.message


def test_scopes_are_kept_only_as_scopes() -> None:
    tok = Token.from_response(dict(BODY, scope="spark:kms \x1b[31mred spark:people_read"), T0)
    assert tok.scopes == ("spark:kms", "spark:people_read")


@pytest.mark.parametrize(
    "body",
    [
        dict(BODY, access_token=""),
        {k: v for k, v in BODY.items() if k != "access_token"},
        dict(BODY, token_type="MAC"),
        dict(BODY, refresh_token=123),
    ],
)
def test_bad_bodies(body: dict[str, object]) -> None:
    with pytest.raises(MalformedResponse):
        Token.from_response(body, T0)


def test_state() -> None:
    tok = Token.from_response(dict(BODY, expires_in=1000), T0)
    assert tok.state(T0, 300) is TokenState.FRESH
    assert tok.state(T0 + 800, 300) is TokenState.STALE
    assert tok.state(T0 + 1000, 300) is TokenState.EXPIRED
    assert not tok.refresh_expired(T0)
    assert tok.refresh_expired(T0 + 7775999)


def test_formatting() -> None:
    assert iso(0) == "1970-01-01T00:00:00+00:00"
    assert human_left(90061) == "1d 1h"
    assert human_left(3725) == "1h 02m"
    assert human_left(42) == "42s"
    assert human_left(-7200).startswith("expired")


def test_profile_rules() -> None:
    assert SCOPE_PRESETS["verint-calling"] == (
        "spark:kms",
        "spark:people_read",
        "identity:tokens_write",
        "identity:tokens_read",
        "spark-compliance:recordings_read",
    )
    assert validate_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert validate_base_url("http://[::1]:9") == "http://[::1]:9"
    assert validate_base_url("https://webexapis.com") == "https://webexapis.com"
    for bad in ("http://10.0.0.1", "https://u:p@webexapis.com", "webexapis.com"):
        with pytest.raises(UsageError):
            validate_base_url(bad)
    assert parse_scopes("a:b, c:d a:b") == ("a:b", "c:d")
    assert loopback_listen_target("http://localhost:8765/cb") == (8765, "/cb")
    assert loopback_listen_target("https://oauth.pstmn.io/v1/callback") is None
    assert loopback_listen_target("http://10.1.1.1:80/cb") is None


def test_unchanged_refresh_token_keeps_its_expiry_through_whole_second_jitter() -> None:
    """A fixed expiry reported in whole seconds, seen from slightly different request times,
    must not look like a moved horizon (the keeper's alerts are keyed on it)."""
    first = Token.from_response(
        {
            "access_token": "A1",
            "expires_in": 60,
            "refresh_token": "R",
            "refresh_token_expires_in": 40,
        },
        1000.9,
    )
    again = Token.from_response(
        {
            "access_token": "A2",
            "expires_in": 60,
            "refresh_token": "R",
            "refresh_token_expires_in": 38,
        },
        1003.1,
        previous=first,
    )
    assert again.refresh_expires_at == first.refresh_expires_at == 1040.9
    # A real move (a sliding expiry renewed) is kept, as is a new refresh token's own expiry.
    slid = Token.from_response(
        {
            "access_token": "A3",
            "expires_in": 60,
            "refresh_token": "R",
            "refresh_token_expires_in": 90,
        },
        1003.1,
        previous=first,
    )
    assert slid.refresh_expires_at == 1093.1
    rotated = Token.from_response(
        {
            "access_token": "A4",
            "expires_in": 60,
            "refresh_token": "R2",
            "refresh_token_expires_in": 38,
        },
        1003.1,
        previous=first,
    )
    assert rotated.refresh_expires_at == 1041.1
