"""The pure protocol functions: PKCE, state, callbacks, pasted URLs, error shapes (no I/O)."""

from __future__ import annotations

import email.utils
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxtoken import oauth, oauth_errors
from wxtoken.errors import (
    ConsentDenied,
    Forbidden,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    MalformedResponse,
    OAuthError,
    RedirectUriRejected,
    StateMismatch,
    WebexUnavailable,
    WxtokenError,
    clean_server_text,
)
from wxtoken.identity import org_id_from_token


def test_pkce_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert oauth.s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifiers_and_states_are_unique_and_well_formed() -> None:
    """20,000 verifiers: lengths, alphabet, no duplicates."""
    n = 20_000
    verifiers = {oauth.new_code_verifier() for _ in range(n)}
    states = {oauth.new_state() for _ in range(n)}
    assert len(verifiers) == n and len(states) == n
    assert all(oauth.valid_code_verifier(v) for v in verifiers)
    # A full match: a trailing newline (which `$` alone lets through) is not a verifier.
    assert not oauth.valid_code_verifier("a" * 43 + "\n")
    assert not oauth.valid_code_verifier("a" * 42) and not oauth.valid_code_verifier("a" * 129)
    assert all(len(s) >= 43 for s in states)  # 256 bits, base64url


def test_authorize_url_always_s256() -> None:
    for _ in range(1000):
        req = oauth.prepare_authorization_request(
            "https://webexapis.com", "Cabc", "http://127.0.0.1:8765/callback", ("spark:kms", "a:b")
        )
        q = parse_qs(urlsplit(req.url).query)
        assert q["code_challenge_method"] == ["S256"]
        assert q["code_challenge"] == [oauth.s256_challenge(req.code_verifier)]
        assert q["state"] == [req.state]
        assert q["scope"] == ["spark:kms a:b"]
        assert q["response_type"] == ["code"]
    assert req.state not in repr(req) and req.code_verifier not in repr(req)


@pytest.mark.parametrize(
    "query",
    [
        "code=abc&state=other",
        "code=abc",
        "code=abc&state=",
        "code=abc&state=S&state=S",
        "error=access_denied&state=forged",
    ],
)
def test_callback_state_mismatch(query: str) -> None:
    with pytest.raises(StateMismatch):
        oauth.parse_authorization_response(query, "S")


def test_callback_outcomes() -> None:
    assert oauth.parse_authorization_response("code=abc&state=S", "S") == "abc"
    with pytest.raises(ConsentDenied):
        oauth.parse_authorization_response("error=access_denied&state=S", "S")
    with pytest.raises(InvalidScope):
        oauth.parse_authorization_response("error=invalid_scope&state=S", "S")
    with pytest.raises(OAuthError, match="single authorization code"):
        oauth.parse_authorization_response("code=a&code=b&state=S", "S")
    with pytest.raises(OAuthError):
        oauth.parse_authorization_response("state=S", "S")
    # A hostile description is cleaned of control characters before it reaches a message.
    with pytest.raises(OAuthError) as info:
        oauth.parse_authorization_response(
            "error=server_error&error_description=%1b%5b2J%0d%0aFAKE&state=S", "S"
        )
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)


REDIRECT = "https://oauth.pstmn.io/v1/callback"


@pytest.mark.parametrize(
    "pasted",
    [
        "http://oauth.pstmn.io/v1/callback?code=a&state=S",
        "https://evil.example/v1/callback?code=a&state=S",
        "https://oauth.pstmn.io:444/v1/callback?code=a&state=S",
        "https://oauth.pstmn.io/v2/callback?code=a&state=S",
    ],
)
def test_pasted_url_for_the_wrong_place(pasted: str) -> None:
    """Another scheme, host, port or path is rejected before any network call."""
    with pytest.raises(StateMismatch):
        oauth.parse_pasted(pasted, REDIRECT, "S")


def test_pasted_variants() -> None:
    assert oauth.parse_pasted(f"  {REDIRECT}?code=abc&state=S \n", REDIRECT, "S") == "abc"
    # Without state (trimmed, or a bare code) only `exchange` takes it; login refuses (CSRF).
    assert oauth.parse_pasted(f"{REDIRECT}/?code=abc", REDIRECT, None) == "abc"
    assert oauth.parse_pasted("ZDA4_PF84_1eb65fdf", REDIRECT, None) == "ZDA4_PF84_1eb65fdf"
    for stateless in (f"{REDIRECT}/?code=abc", "ZDA4_PF84_1eb65fdf"):
        with pytest.raises(StateMismatch):
            oauth.parse_pasted(stateless, REDIRECT, "S")
    for bad in (f"{REDIRECT}?state=S", f"{REDIRECT}?code=a&code=b&state=S", "two words"):
        with pytest.raises(OAuthError):
            oauth.parse_pasted(bad, REDIRECT, "S")
    with pytest.raises(StateMismatch):
        oauth.parse_pasted(f"{REDIRECT}#code=a&state=S", REDIRECT, "S")


def _info(
    status: int, body: object, headers: dict[str, str] | None = None
) -> oauth_errors.ErrorInfo:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return oauth_errors.read_error(status, raw, headers or {})


def envelope(desc: str, message: str = "The request could not be understood") -> dict[str, object]:
    return {"message": message, "errors": [{"description": desc}], "trackingId": "ROUTER_X"}


# Each (status, body) lands in exactly the expected class: exact codes, not substrings.
CLASSIFY = [
    (
        400,
        envelope("invalid_grant: Authorization code has expired"),
        "authorization_code",
        InvalidGrant,
    ),
    (
        400,
        {"error": "invalid_grant", "error_description": "expired"},
        "refresh_token",
        InvalidGrant,
    ),
    (
        400,
        envelope("invalid_grant: redirect_uri does not match"),
        "authorization_code",
        RedirectUriRejected,
    ),
    (
        401,
        envelope("invalid_client: client authentication failed"),
        "authorization_code",
        InvalidClient,
    ),
    (400, {"error": "invalid_client"}, "refresh_token", InvalidClient),
    (401, b"", "refresh_token", InvalidClient),
    (400, {"error": "invalid_scope"}, "authorization_code", InvalidScope),
    (403, envelope("missing scope", "The server understood the request"), "api", Forbidden),
    (401, envelope("The request requires a valid access token"), "api", InvalidGrant),
    (429, b"", "refresh_token", WebexUnavailable),
    (502, b"<html>Bad Gateway</html>", "refresh_token", WebexUnavailable),
    (503, envelope("server_error"), "refresh_token", WebexUnavailable),
    (400, {"error": "temporarily_unavailable"}, "refresh_token", WebexUnavailable),
    (400, {"error": "server_error"}, "refresh_token", WebexUnavailable),
    (400, envelope("internal_server_error_x happened"), "refresh_token", OAuthError),
    (400, envelope("user_error"), "refresh_token", OAuthError),
    (400, envelope("auth_server_config"), "refresh_token", OAuthError),
    (400, envelope("xinvalid_grant"), "refresh_token", OAuthError),
]


@pytest.mark.parametrize(("status", "body", "grant", "cls"), CLASSIFY)
def test_error_classification(status: int, body: object, grant: str, cls: type) -> None:
    err = oauth_errors.classify_error(_info(status, body), grant=grant)
    assert type(err) is cls, (status, body, type(err))
    # Programs branch on .status and .error, never on the prose.
    assert err.status == status
    assert err.error == _info(status, body).code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"error": "authorization_pending"}, "authorization_pending"),
        ({"error": "slow_down", "error_description": "poll less"}, "slow_down"),
        (envelope("tokenlimit_reached: too many tokens"), "tokenlimit_reached"),
        ({"error": "not_a_code"}, None),
    ],
)
def test_error_carries_the_oauth_code(body: object, code: str | None) -> None:
    err = oauth_errors.classify_error(_info(400, body), grant="device_code")
    assert err.error == code and err.status == 400


def test_tracking_id_from_body_or_header() -> None:
    assert _info(400, envelope("x")).tracking_id == "ROUTER_X"
    assert _info(500, b"", {"trackingid": "ROUTER_H"}).tracking_id == "ROUTER_H"
    err = oauth_errors.classify_error(
        _info(400, envelope("invalid_grant: x")), grant="refresh_token"
    )
    assert "ROUTER_X" in err.one_line()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("0", 0.0),
        ("-5", None),
        ("abc", None),
        ("99999999", 99999999.0),
        (None, None),
        ("", None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert oauth_errors.parse_retry_after(value, 1_000_000.0) == expected


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 45, usegmt=True)
    assert oauth_errors.parse_retry_after(date, now) == pytest.approx(45, abs=1)


@pytest.mark.parametrize(
    "body",
    [
        b'{"access_token": "ab',
        b'{"a": 1} trailing',
        b'{"a": NaN}',
        b"[" * 10000 + b"]" * 10000,
        b"\xff\xfe garbage",
        b"",
        b"<html>502</html>",
        b"[1, 2]",
    ],
)
def test_parse_json_object_classifies_junk(body: bytes) -> None:
    """Each malformed body is a MalformedResponse, never another exception."""
    with pytest.raises(MalformedResponse):
        oauth.parse_json_object(body, "application/json")


def test_parse_json_object_accepts_bom() -> None:
    assert oauth.parse_json_object(b'\xef\xbb\xbf{"a": 1}', None) == {"a": 1}


def test_200_with_error_is_an_error() -> None:
    with pytest.raises(MalformedResponse):
        oauth.check_token_body({"error": "invalid_grant"})


def test_clean_server_text() -> None:
    hostile = "a\r\nFAKE LOG LINE\x1b[2J\x1b]0;title\x07\u202eevil" + "x" * 500
    cleaned = clean_server_text(hostile)
    assert all(ch.isprintable() for ch in cleaned) and len(cleaned) <= 200


def test_org_id_from_token() -> None:
    tok = "MjZmMzcy_PF84_1eb65fdf-9643-417f-9974-ad72cae0e10f"
    assert org_id_from_token(tok) == "1eb65fdf-9643-417f-9974-ad72cae0e10f"
    assert org_id_from_token("opaque") is None
    assert org_id_from_token("a_b_consumer") is None


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=2000),
    st.integers(min_value=100, max_value=599),
    st.dictionaries(st.sampled_from(["trackingid", "retry-after"]), st.text(max_size=50)),
)
def test_error_parser_never_crashes(body: bytes, status: int, headers: dict[str, str]) -> None:
    """Arbitrary bodies classify into our own errors only."""
    info = oauth_errors.read_error(status, body, headers)
    assert "\n" not in info.message
    err = oauth_errors.classify_error(info, grant="refresh_token")
    assert isinstance(err, WxtokenError)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_callback_parser_never_crashes(query: str) -> None:
    try:
        oauth.parse_authorization_response(query, "S")
    except WxtokenError:
        pass


TOKEN = "ZmQ2YjM3NWItNjk4Ni00YjU3LWI5MjItZTY1YzQ3YjM2NmY0OWE1ZTJkZjMtMGI3"


@pytest.mark.parametrize(
    "body",
    [
        b'{"access_token":"' + TOKEN.encode() + b'","expires_in":NaN}',
        b'{"access_token":"' + TOKEN.encode() + b'","expires_in":1}trailing',
        b'{"access_token":"' + TOKEN.encode() + b'","expires_in":12',
        b'{"access_token":"' + TOKEN.encode() + b'\xff","expires_in":1}',
        b'{"access_token":"' + TOKEN.encode() + b'","expires_in":Infinity}',
    ],
)
def test_an_unparseable_token_body_is_never_quoted(body: bytes) -> None:
    """A 200 from the token endpoint that fails to parse still holds the new access token:
    the error says what and where, never what the body said."""
    with pytest.raises(MalformedResponse) as info:
        oauth.parse_json_object(body, "application/json")
    text = str(info.value)
    assert not any(TOKEN[i : i + 12] in text for i in range(len(TOKEN) - 11)), text
    assert f"{len(body)} bytes" in text and ("byte" in text or "NaN" in text)


def test_error_texts_and_headers_never_echo_what_we_sent() -> None:
    refresh = "RT-CANARY-" + TOKEN
    secret = "CS-CANARY-0123456789abcdef0123456789abcdef"
    body = json.dumps(
        {
            "error": "invalid_grant",
            "error_description": f"refresh token {refresh} is bad; client {secret[4:30]} too",
            "trackingId": f"ROUTER_{refresh[20:40]}",
        }
    ).encode()
    info = oauth_errors.read_error(400, body, {}, sent=(refresh, secret))
    err = oauth_errors.classify_error(info, grant="refresh_token")
    text = err.one_line()
    for value in (refresh, secret):
        assert not any(value[i : i + 12] in text for i in range(len(value) - 11)), text
    assert "[redacted]" in text and err.error == "invalid_grant"


def test_a_200_error_body_names_only_known_codes() -> None:
    with pytest.raises(MalformedResponse) as info:
        oauth.check_token_body({"error": TOKEN})
    assert TOKEN[:12] not in str(info.value)
