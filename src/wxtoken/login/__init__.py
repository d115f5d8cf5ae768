"""Signing in: open the browser, catch the redirect (or take a pasted one), exchange the code.

`run_login` is the whole interactive flow; the listener is in `loopback`, the parsing of a
pasted address in `oauth.parse_pasted`.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from .. import oauth
from ..errors import OAuthError
from ..manager import TokenManager
from ..profile import loopback_listen_target
from ..results import LoginResult
from . import browser
from .loopback import DEFAULT_TIMEOUT, CallbackListener, listen_addresses

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
    stdin: IO[str] = sys.stdin,
    err: IO[str] = sys.stderr,
) -> LoginResult:
    profile = manager.profile
    request = oauth.prepare_authorization_request(
        profile.base_url, profile.client_id, profile.redirect_uri, profile.scopes
    )
    target = None if paste else loopback_listen_target(profile.redirect_uri)
    listener = None
    if target is not None:
        hosts = listen_addresses(profile.redirect_uri)
        listener = CallbackListener(target[0], target[1], request.state, hosts=hosts)
        listener.start()
    err.write(
        f"Sign in to Webex as an administrator for profile {profile.name!r}:\n\n  {request.url}\n\n"
    )
    if open_browser:
        browser.open_browser(request.url, err)
    if listener is not None:
        err.write(f"Waiting up to {timeout:g} s for the redirect to {profile.redirect_uri} ...\n")
        err.flush()
        code = listener.wait(timeout)
        via = "loopback"
    else:
        err.write(f"After signing in, the browser goes to {profile.redirect_uri}?code=...\n")
        started = time.monotonic()
        text = read_pasted("Paste that whole address (or only the code): ", stdin, err)
        if time.monotonic() - started > timeout:
            raise OAuthError(
                f"the paste took longer than {timeout:g} s; the code has likely expired",
                fix="run `wxtoken login --paste` again and paste promptly",
            )
        code = oauth.parse_pasted(text, profile.redirect_uri, request.state)
        via = "paste"
    err.write("Exchanging the code for tokens ...\n")
    return manager.exchange_code(code, code_verifier=request.code_verifier, via=via)
