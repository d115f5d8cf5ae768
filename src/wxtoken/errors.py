"""The one exception tree of wxtoken; each family carries the exit code the CLI documents.

    WxtokenError (1)                       anything we raise on purpose
    ├── UsageError (2)                     the command line or environment is wrong
    │   └── ProfileNotFound (2)
    ├── OAuthError (1)                     Webex refused the request for a fixable reason
    │   ├── InvalidClient (1)              wrong client id or secret
    │   ├── RedirectUriRejected (1)        redirect URI not registered / not matching
    │   ├── StateMismatch (1)              the callback was not for this login attempt
    │   ├── OrgMismatch (1)                a refresh answered for another org
    │   ├── InvalidScope (1)
    │   └── Forbidden (1)                  403: missing scope or admin role
    ├── LoginRequired (4)                  a person must sign in again
    │   ├── NoTokens (4)
    │   ├── ConsentDenied (4)
    │   └── InvalidGrant (4)               code or refresh token invalid, expired, used, revoked
    ├── WebexUnavailable (5)               unreachable, 5xx or 429 after retries
    │   └── MalformedResponse (5)          HTML, truncated JSON, missing fields, oversized body
    └── StorageError (6)                   the store or its key
        ├── KeySourceError (6)             key source unavailable, mismatched or misconfigured
        ├── WrongKey (6)                   wrong passphrase or key
        ├── TamperedData (6)               a ciphertext failed authentication
        ├── CorruptStore (6)
        └── UnsafePermissions (6)

Every error renders as one line: what happened and why, then the command that fixes it. No
message ever carries a secret: callers pass fingerprints, and server-provided text goes through
`clean_server_text` (control characters stripped, length capped) before it lands here.

An error that came from a Webex response also carries what a program branches on: `.status`
(the HTTP status) and `.error` (the OAuth error code, e.g. "invalid_grant" or
"authorization_pending", when Webex sent one). Never parse the message to tell errors apart.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ATTENTION = 3
EXIT_LOGIN_REQUIRED = 4
EXIT_UNAVAILABLE = 5
EXIT_STORAGE = 6

# Control characters (CR/LF, ANSI and OSC escapes), bidi overrides, and lone surrogates (which
# cannot even be written to a UTF-8 terminal or database without an exception).
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Written into a fix by code that does not know the profile; the manager and the CLI replace it
# (WxtokenError.for_profile), so every fix is a command that can be pasted as printed.
PROFILE = "{profile}"

# Any run this long of a secret we sent is removed from server text (see `redact`).
REDACT_WINDOW = 12


def clean_server_text(text: str, limit: int = 200) -> str:
    """Make text that came from a server or a callback safe for one terminal/log line.

    Strips control characters (CR/LF, ANSI and OSC escapes, bidi overrides, lone surrogates)
    so a hostile `error_description` cannot forge log lines, repaint the terminal or crash the
    write of a log line.
    """
    cleaned = _CONTROL.sub(" ", text)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every run of REDACT_WINDOW or more characters of any of `secrets` removed.

    A server can echo what it was sent (a refresh token, a client secret, a code) in an error
    description or a header; such text travels to terminals, logs, alerts and the event log,
    so anything of ours is cut out before it is used at all.
    """
    marks = [False] * len(text)
    for secret in secrets:
        for i in range(len(secret) - REDACT_WINDOW + 1):
            window = secret[i : i + REDACT_WINDOW]
            start = text.find(window)
            while start != -1:
                for j in range(start, start + REDACT_WINDOW):
                    marks[j] = True
                start = text.find(window, start + 1)
    if not any(marks):
        return text
    out: list[str] = []
    for ch, hidden in zip(text, marks, strict=True):
        if not hidden:
            out.append(ch)
        elif not out or out[-1] != "\x00":
            out.append("\x00")
    return "".join(out).replace("\x00", "[redacted]")


class WxtokenError(Exception):
    """Base of every error wxtoken raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        tracking_id: str | None = None,
        error: str | None = None,
        status: int | None = None,
        said: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.tracking_id = tracking_id
        self.error = error  # the OAuth error code Webex sent, if any
        self.status = status  # the HTTP status of Webex's answer, if there was one
        self.said = said  # Webex's own words (sanitised, secrets cut out), if it sent any

    def for_profile(self, name: str) -> WxtokenError:
        """Name the profile in the fix: errors raised below the manager (parsing Webex's answer,
        opening the store) write `{profile}` where the command to paste needs it."""
        if self.fix:
            self.fix = self.fix.replace(PROFILE, name)
        return self

    def restated(self, message: str, fix: str | None) -> WxtokenError:
        """The same error (type, Webex's code, status, words, trackingId) told in other words:
        for a layer that knows what the failure means for the profile."""
        return type(self)(
            message,
            fix=fix,
            tracking_id=self.tracking_id,
            error=self.error,
            status=self.status,
            said=self.said,
        )

    def one_line(self) -> str:
        parts = [self.message.rstrip(".")]
        if self.tracking_id:
            parts[0] += f" (Webex trackingId {clean_server_text(self.tracking_id, 80)})"
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.one_line()


class UsageError(WxtokenError):
    """The command line or the environment is wrong."""

    exit_code = EXIT_USAGE


class ProfileNotFound(UsageError):
    """No profile has that name."""


class OAuthError(WxtokenError):
    """Webex refused for a reason a person can fix; `.error` and `.status` say which."""

    exit_code = EXIT_ERROR


class InvalidClient(OAuthError):
    """Webex rejected the client id or secret."""


class RedirectUriRejected(OAuthError):
    """The redirect URI is not registered on the integration (exact match)."""


class StateMismatch(OAuthError):
    """A callback that does not belong to this sign-in attempt."""


class OrgMismatch(OAuthError):
    """A refresh answered with a token for another org than the grant's."""


class InvalidScope(OAuthError):
    """Webex rejected the requested scopes."""


class Forbidden(OAuthError):
    """403: the token lacks a scope or the user lacks an admin role."""


class LoginRequired(WxtokenError):
    """A person must sign in again."""

    exit_code = EXIT_LOGIN_REQUIRED


class NoTokens(LoginRequired):
    """The profile has no tokens yet (never signed in, or logged out)."""


class ConsentDenied(LoginRequired):
    """The user or an administrator declined the integration."""


class InvalidGrant(LoginRequired):
    """A code or refresh token that is invalid, expired, used or revoked."""


class AppDeauthorized(LoginRequired):
    """Minting refused with 403 or 404: the service app is not authorized in the target org."""


class WebexUnavailable(WxtokenError):
    """Webex is unreachable, failing, or rate-limiting beyond the retry budget."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        tracking_id: str | None = None,
        retry_after: float | None = None,
        error: str | None = None,
        status: int | None = None,
        said: str | None = None,
    ):
        super().__init__(
            message, fix=fix, tracking_id=tracking_id, error=error, status=status, said=said
        )
        self.retry_after = retry_after


class MalformedResponse(WebexUnavailable):
    """An answer that is not what Webex sends: HTML, truncated, oversized, fields missing."""


class StorageError(WxtokenError):
    """The store or its key."""

    exit_code = EXIT_STORAGE


class KeySourceError(StorageError):
    """The key source is unavailable, misconfigured, or not the store's."""


class WrongKey(StorageError):
    """The passphrase or key does not open this store."""


class TamperedData(StorageError):
    """A sealed value failed its integrity check."""


class CorruptStore(StorageError):
    """The store file is damaged or not a wxtoken store."""


class UnsafePermissions(StorageError):
    """A store file or directory that other users can reach, or someone else owns."""
