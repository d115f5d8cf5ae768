"""Signing in: open the browser, catch the redirect (or take a pasted one), exchange the code.

`run_login` is the whole interactive flow, in the order that wastes nobody's time: the store's
key first (a passphrase prompt, or a key that does not open the store, before anyone signs in),
then the listener's port, then one question to Webex whether it would start this sign-in at
all (`probe`), then the browser; the browser tab is answered only once the tokens are stored.
The listener is in `loopback`, the browser in `browser`, and the parsing of a pasted address in
`oauth.parse_pasted`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from .. import oauth
from ..errors import OAuthError, WxtokenError
from ..manager import TokenManager
from ..profile import loopback_listen_target
from ..results import LoginResult
from . import browser, probe
from .loopback import DEFAULT_TIMEOUT, CallbackListener, listen_addresses

if TYPE_CHECKING:
    import httpx2

__all__ = ["DEFAULT_TIMEOUT", "CallbackListener", "run_login"]


def read_pasted(prompt: str, stdin: IO[str], err: IO[str]) -> str:
    """One line from a terminal (not echoed) or from a pipe."""
    if stdin.isatty():
        import getpass

        return getpass.getpass(prompt, stream=err)  # type: ignore[arg-type]
    err.write(prompt)
    err.flush()
    return stdin.readline()


def run_login(
    manager: TokenManager,
    *,
    open_browser: bool,
    paste: bool,
    timeout: float,
    transport: httpx2.BaseTransport | None = None,
    stdin: IO[str] = sys.stdin,
    err: IO[str] = sys.stderr,
    show_url: Callable[[str], None] | None = None,
) -> LoginResult:
    """Sign in for `manager`'s profile and store the tokens; `transport` is for tests.

    `show_url` receives the sign-in address once Webex accepted to start it (the console shows
    it as a link instead of starting a browser).
    """
    profile = manager.profile
    # Reading the client secret proves the key opens this profile's sealed data.
    manager.store.unlock()
    manager.store.client_secret(manager.name)
    request = oauth.prepare_authorization_request(
        profile.base_url, profile.client_id, profile.redirect_uri, profile.scopes
    )
    target = None if paste else loopback_listen_target(profile.redirect_uri)
    listener = None
    if target is not None:
        hosts = listen_addresses(profile.redirect_uri)
        listener = CallbackListener(target[0], target[1], request.state, hosts=hosts)
        listener.start()
    try:
        probe.check_authorize(
            profile,
            transport=transport,
            timeout=min(probe.PROBE_TIMEOUT, manager.settings.timeouts.http_deadline),
        )
        err.write(
            f"Sign in to Webex as an administrator for profile {profile.name!r}:\n\n"
            f"  {request.url}\n\n"
        )
        if show_url is not None:
            show_url(request.url)
        if open_browser:
            browser.open_browser(request.url, _offer_alternatives(profile.name, err))
        if listener is not None:
            err.write(
                f"Waiting up to {timeout:g} s for the redirect to {profile.redirect_uri} ...\n"
            )
            err.flush()
            code, via = listener.wait(timeout), "loopback"
        else:
            code, via = (
                _pasted_code(profile.redirect_uri, request.state, timeout, stdin, err),
                "paste",
            )
        err.write("Exchanging the code for tokens ...\n")
        result = manager.exchange_code(code, code_verifier=request.code_verifier, via=via)
    except WxtokenError as exc:
        if listener is not None:
            listener.fail(exc)
        raise
    else:
        if listener is not None:
            listener.succeed(_stored_text(manager.name, result))
        return result
    finally:
        if listener is not None:
            listener.close()


def _offer_alternatives(name: str, err: IO[str]) -> browser.OnFailure:
    """What to say when no browser comes up: the listener keeps waiting (a browser elsewhere
    may still reach it, say through an SSH tunnel), and the two ways that need none here."""

    def say(why: str) -> None:
        err.write(
            f"wxtoken: no browser could be started here ({why}); still waiting for the "
            "redirect. Without a browser on this machine:\n"
            f"  sign in with a code from any other device:  wxtoken login --device -p {name}\n"
            f"  or paste the address the browser lands on:  wxtoken login --paste -p {name}\n"
        )
        err.flush()

    return say


def _pasted_code(
    redirect_uri: str, state: str, timeout: float, stdin: IO[str], err: IO[str]
) -> str:
    err.write(f"After signing in, the browser goes to {redirect_uri}?code=...\n")
    started = time.monotonic()
    text = read_pasted("Paste that whole address: ", stdin, err)
    if time.monotonic() - started > timeout:
        raise OAuthError(
            f"the paste took longer than {timeout:g} s; the code has likely expired",
            fix="run `wxtoken login -p {profile} --paste` again and paste promptly",
        )
    return oauth.parse_pasted(text, redirect_uri, state)


def _stored_text(profile: str, result: LoginResult) -> str:
    """What the browser tab says once the tokens are stored (no secret, escaped by the page)."""
    who = result.record.identity
    person = who.email or "an unknown user"
    if who.display_name and who.email:
        person = f"{who.display_name} <{who.email}>"
    fewer = (
        " Webex granted fewer scopes than requested; the terminal names them."
        if result.missing_scopes
        else ""
    )
    return (
        f"wxtoken stored the tokens for profile {profile!r}, signed in as {person}.{fewer} "
        "You can close this tab and return to the terminal."
    )
