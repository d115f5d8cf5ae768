"""`wxtoken login` and `wxtoken exchange`: getting a grant and storing it."""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from ..login import DEFAULT_TIMEOUT, run_login
from ..manager import TokenManager
from ..oauth import parse_pasted
from ..profile import KIND_SERVICE_APP
from ..results import LoginResult
from . import render
from .app import App, pass_app
from .options import EXIT_CODES_HELP, err, json_option, profile_option


def _summary(app: App, manager: TokenManager, result: LoginResult, as_json: bool) -> None:
    if as_json:
        click.echo(render.to_json(result.as_json(manager.name, manager.store.location)))
    err(render.login_summary(manager.name, result, manager.store.location, app.clock()))


def _mint(app: App, manager: TokenManager, as_json: bool) -> None:
    """A service app signs in by minting through its minter: no browser, no person."""
    result = manager.mint()
    if as_json:
        click.echo(render.to_json(result.as_json(manager.name, manager.store.location)))
    err(render.minted_summary(manager.name, manager.profile, result, app.clock()))


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--no-browser", is_flag=True, help="Print the sign-in URL instead of opening it.")
@click.option("--paste", is_flag=True, help="Paste the redirect URL instead of listening for it.")
@click.option(
    "--device",
    is_flag=True,
    help="Sign in with a code approved on any other device (no browser or redirect here).",
)
@click.option("--no-qr", is_flag=True, help="With --device: do not draw the QR code.")
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds to wait for the sign-in.",
)
@json_option("Print the summary as JSON on stdout.")
@pass_app
def login(
    app: App,
    profile: str | None,
    no_browser: bool,
    paste: bool,
    device: bool,
    no_qr: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Sign in at Webex and store the tokens (state and PKCE S256 checked).

    The store's key is settled first (a passphrase prompt comes before the browser), and
    Webex is asked once whether it accepts the profile's client id, redirect URI and scopes.
    With a loopback redirect URI (http://127.0.0.1:PORT/... or http://localhost:PORT/...)
    wxtoken listens for the redirect on 127.0.0.1 (and on [::1] too for localhost); otherwise,
    or with --paste, paste the whole address the browser lands on (it must carry the state).
    The browser is $BROWSER or the platform's default, started without wxtoken's secrets;
    where none can start, wxtoken says so and keeps listening.

    With --device (a server without a browser), wxtoken prints a six-digit code and a Webex
    address (and a QR code on a terminal); approve the code there from any device, within the
    time shown. The integration must list Webex's device helper redirect URIs (see the README).
    Webex granting fewer scopes than the profile asks for is an error (exit 1); the tokens
    are kept.

    A service-app profile is not signed in for: its tokens are minted through its minter.

    \b
    Examples:
      wxtoken login -p recorder
      wxtoken login -p recorder --no-browser --paste
      wxtoken login -p recorder --device
    """
    if device and (paste or no_browser):
        raise UsageError(
            "--device cannot be combined with --paste or --no-browser",
            fix="wxtoken login --device" + (f" -p {profile}" if profile else ""),
        )
    manager = app.manager(profile)
    if manager.profile.kind == KIND_SERVICE_APP:
        _mint(app, manager, as_json)
        return
    if device:
        from ..login.device import require_granted, run_device_login

        result = run_device_login(manager, qr=not no_qr and sys.stdout.isatty())
        _summary(app, manager, result, as_json)
        require_granted(manager.name, result)
        return
    result = run_login(
        manager,
        open_browser=not no_browser,
        paste=paste,
        timeout=timeout,
        transport=app.transport,
    )
    _summary(app, manager, result, as_json)


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--code",
    required=True,
    help="The authorization code, or - to read it from stdin (preferred: a code on "
    "the command line lands in shell history and the process list).",
)
@json_option("Print the summary as JSON on stdout.")
@pass_app
def exchange(app: App, profile: str | None, code: str, as_json: bool) -> None:
    """Exchange a code obtained elsewhere (the manual procedure's curl step), done safely.

    There is no state to check here: wxtoken did not start the sign-in the code came from, so
    it cannot tell your code from someone else's. Use it only for a code you obtained yourself;
    `wxtoken login --paste` checks the state and refuses addresses without one.

    \b
    Example:
      pbpaste | wxtoken exchange -p recorder --code -
    """
    if code == "-":
        code = sys.stdin.readline().strip()
    else:
        err(
            "wxtoken: warning: a code on the command line is visible to other local users; "
            "prefer --code - and stdin"
        )
    if not code:
        raise UsageError("no authorization code given", fix="echo CODE | wxtoken exchange --code -")
    manager = app.manager(profile)
    if "://" in code or "code=" in code:
        code = parse_pasted(code, manager.profile.redirect_uri, None)
    result = manager.exchange_code(code, code_verifier=None, via="exchange")
    _summary(app, manager, result, as_json)
