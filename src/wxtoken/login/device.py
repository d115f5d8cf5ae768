"""Signing in with a code instead of a browser on this machine: Webex's device grant.

`run_device_login` asks Webex for a code (`/v1/device/authorize`), shows it with the address
to approve it at (and a QR code of that address on a terminal), then polls `/v1/device/token`
until the person approves, denies, or the code expires. The pace is decided here and only
here: never faster than Webex's `interval`, five seconds slower for good after each
`slow_down`, at least `Retry-After` after a 429, and a transient failure waits and tries again
until the code's lifetime runs out (the person may be approving right then). The tokens are
stored as any sign-in stores them (`via="device"`); afterwards refresh, the keeper, status and
export treat the grant like any other.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

from ..device import OIDC_SCOPES, SLOW_DOWN_STEP
from ..errors import (
    PROFILE,
    InvalidGrant,
    MalformedResponse,
    OAuthError,
    UsageError,
    WebexUnavailable,
    WxtokenError,
    clean_server_text,
)
from ..grants import DeviceAuthorization
from ..manager import TokenManager
from ..oauth_errors import DEVICE_SIGN_IN, PENDING, SLOW_DOWN, register_helper_uris
from ..profile import is_loopback_host
from ..results import LoginResult

# Where Webex's verification pages live (oauth-helper-*.wbx2.com, login-*.webex.com). An
# answer pointing the person anywhere else is refused rather than shown: approving a code on
# a page that is not Webex's is exactly what a phishing device-code attack asks for.
WEBEX_DOMAINS = ("webex.com", "wbx2.com")
# Webex's user codes are six digits; anything printable and short is shown, nothing else.
_USER_CODE = re.compile(r"[A-Za-z0-9-]{4,16}")
PLAIN_PROGRESS_EVERY = 60.0  # seconds between "still waiting" lines when stderr is not a tty


def refuse_oidc_scopes(name: str, scopes: tuple[str, ...]) -> None:
    """Webex's device grant does not support OpenID Connect scopes: stop before asking it."""
    oidc = [s for s in scopes if s in OIDC_SCOPES]
    if not oidc:
        return
    rest = " ".join(s for s in scopes if s not in OIDC_SCOPES)
    fix = (
        f'wxtoken profile set {name} --scopes "{rest}", then wxtoken login --device -p {name}'
        if rest
        else f"sign in with the browser instead: wxtoken login -p {name}"
    )
    raise UsageError(
        f"profile {name!r} asks for OpenID Connect scopes ({' '.join(oidc)}), which Webex's "
        "device sign-in does not support",
        fix=fix,
    )


def verification_address(uri: str, base_url: str) -> str:
    """`uri` if it is a Webex page (or, for the emulator, on the base URL's loopback host)."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    base_host = (urlsplit(base_url).hostname or "").lower()
    on_webex = parts.scheme == "https" and any(
        host == d or host.endswith("." + d) for d in WEBEX_DOMAINS
    )
    local = is_loopback_host(host) and host == base_host
    if not (on_webex or local) or clean_server_text(uri, 2048) != uri:
        raise MalformedResponse(
            f"Webex's device answer sends the person to {clean_server_text(host, 80)!r}, not "
            "to a Webex page; wxtoken does not show it",
            fix="check the profile's base URL (`wxtoken profile show {profile}`)",
        )
    return uri


@dataclass
class Countdown:
    """Waiting between polls, showing the time left: a live line on a terminal, a plain line
    now and then otherwise (logs and pipes get no carriage returns)."""

    err: IO[str]
    deadline: float
    terminal: bool
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last_plain: float = 0.0

    def left(self) -> float:
        return max(0.0, self.deadline - self.monotonic())

    def wait(self, seconds: float) -> None:
        until = self.monotonic() + seconds
        while (remaining := until - self.monotonic()) > 0:
            if self.terminal:
                self.err.write(f"\r  waiting for approval: {_mmss(self.left())} left ")
                self.err.flush()
            elif self.monotonic() - self._last_plain >= PLAIN_PROGRESS_EVERY:
                self._last_plain = self.monotonic()
                self.err.write(f"  waiting for approval: {_mmss(self.left())} left\n")
                self.err.flush()
            self.sleep(min(remaining, 1.0) if self.terminal else remaining)

    def note(self, text: str) -> None:
        """A line that interrupts the countdown (slow_down, a rate limit, a failure)."""
        self.done()
        self.err.write(f"wxtoken: {text}\n")
        self.err.flush()

    def done(self) -> None:
        if self.terminal:
            self.err.write("\r\x1b[K")
            self.err.flush()


def _mmss(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 60}:{s % 60:02d}"


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")


def show_code(auth: DeviceAuthorization, name: str, base_url: str, err: IO[str], qr: bool) -> None:
    """What the person needs: the code, where to type it, for how long, and the warning."""
    uri = verification_address(auth.verification_uri, base_url)
    if not _USER_CODE.fullmatch(auth.user_code):
        raise MalformedResponse(
            "Webex's device answer has no usable user code",
            fix="retry later: " + DEVICE_SIGN_IN.replace(PROFILE, name),
        )
    host = urlsplit(uri).hostname or ""
    complete = auth.verification_uri_complete
    if complete is not None:
        try:
            complete = verification_address(complete, base_url)
        except MalformedResponse:
            complete = None  # the plain address and the typed code still work
    err.write(
        f"To sign in profile {name!r}, open this address in a browser on any device:\n\n"
        f"  {uri}\n\n"
        f"and enter the code\n\n  {auth.user_code}\n\n"
        f"The code is valid for {_minutes(auth.expires_in)}. Approve it only if you started "
        f"it here yourself, and only on Webex's own page ({host}): never a code someone sent "
        "you.\n"
    )
    if complete is not None:
        err.write(f"The same page with the code filled in: {complete}\n")
        if qr:
            _draw_qr(complete, err)
    err.flush()


def _draw_qr(text: str, err: IO[str]) -> None:
    import io

    import segno  # only for a terminal: it is not needed anywhere else

    drawn = io.StringIO()
    segno.make(text, error="l").terminal(out=drawn, compact=True, border=2)
    err.write("\n" + drawn.getvalue() + "\n")


def run_device_login(
    manager: TokenManager,
    *,
    qr: bool = True,
    err: IO[str] = sys.stderr,
    terminal: bool | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_code: Callable[[DeviceAuthorization], None] | None = None,
) -> LoginResult:
    """Sign in `manager`'s profile with a device code and store the tokens.

    `terminal` (default: whether `err` is a tty) turns on the live countdown; `qr` draws the
    address as a QR code, on a terminal only. `on_code` receives the code once it has been
    checked and shown (the console shows it on its page).
    """
    profile = manager.profile
    name = manager.name
    refuse_oidc_scopes(name, profile.scopes)
    # Reading the client secret proves the key opens this profile's sealed data before anyone
    # is asked to approve anything.
    manager.store.unlock()
    manager.store.client_secret(name)
    tty = err.isatty() if terminal is None else terminal
    started = monotonic()  # before asking: Webex's clock for the code starts no later
    auth = manager.device_authorize()
    show_code(auth, name, profile.base_url, err, qr and tty)
    if on_code is not None:
        on_code(auth)
    countdown = Countdown(err, started + auth.expires_in, tty, monotonic, sleep)
    try:
        return _poll(manager, auth, countdown)
    except KeyboardInterrupt:
        countdown.done()  # the CLI's "interrupted" line starts on a clean line
        raise


def _poll(manager: TokenManager, auth: DeviceAuthorization, countdown: Countdown) -> LoginResult:
    """Poll until approved, denied or expired, at the pace the module docstring describes."""
    name = manager.name
    interval = float(auth.interval)
    wait = interval
    while True:
        if countdown.left() <= wait:  # a poll at the instant of expiry finds the code dead
            countdown.done()
            raise _expired(name, auth.expires_in)
        countdown.wait(wait)
        try:
            result = manager.redeem_device_code(auth.device_code)
        except MalformedResponse:
            countdown.done()
            raise
        except WebexUnavailable as exc:
            # The code is still alive at Webex: wait (at least as long as asked) and go on.
            wait = max(interval, exc.retry_after or 0.0)
            countdown.note(f"{exc.message}; polling again in {wait:g} s")
            continue
        except OAuthError as exc:
            if exc.error == PENDING:
                wait = interval
                continue
            if exc.error == SLOW_DOWN:
                interval += SLOW_DOWN_STEP
                wait = interval
                countdown.note(f"Webex asked to poll more slowly: every {interval:g} s now")
                continue
            countdown.done()
            raise
        except WxtokenError:
            countdown.done()
            raise
        countdown.done()
        return result


def _expired(name: str, lifetime: int) -> InvalidGrant:
    command = DEVICE_SIGN_IN.replace(PROFILE, name)
    return InvalidGrant(
        f"the code expired before it was approved (it was valid for {_minutes(lifetime)})",
        fix=f"run again and approve promptly: {command} (if Webex's page showed an error "
        f"instead of asking to approve, {register_helper_uris()})",
    )


def require_granted(name: str, result: LoginResult) -> None:
    """Fail (exit 1) when Webex granted fewer scopes than the profile asks for.

    The tokens stay stored: the grant exists at Webex either way (dropping our copy would not
    end it), `status` and `verify` keep naming what is missing, and a new sign-in replaces it.
    """
    if not result.missing_scopes or not result.granted_scopes:
        return  # all granted, or Webex did not say which it granted
    missing = " ".join(result.missing_scopes)
    raise OAuthError(
        f"Webex granted fewer scopes than profile {name!r} asks for; missing: {missing} (the "
        "tokens are stored, but a recorder needing these scopes will fail)",
        fix="register the missing scopes on the integration at developer.webex.com and sign "
        "in as a user allowed them (a Full Admin for admin scopes), then "
        + DEVICE_SIGN_IN.replace(PROFILE, name),
    )
