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
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds to wait for the sign-in.",
)
@json_option("Print the summary as JSON on stdout.")
@pass_app
def login(
    app: App, profile: str | None, no_browser: bool, paste: bool, timeout: float, as_json: bool
) -> None:
    """Sign in at Webex and store the tokens (state and PKCE S256 checked).

    The store's key is settled first (a passphrase prompt comes before the browser), and
    Webex is asked once whether it accepts the profile's client id, redirect URI and scopes.
    With a loopback redirect URI (http://127.0.0.1:PORT/... or http://localhost:PORT/...)
    wxtoken listens for the redirect on 127.0.0.1 (and on [::1] too for localhost); otherwise,
    or with --paste, paste the whole address the browser lands on (it must carry the state).
    The browser is $BROWSER or the platform's default, started without wxtoken's secrets.
    A service-app profile is not signed in for: its tokens are minted through its minter.

    \b
    Examples:
      wxtoken login -p recorder
      wxtoken login -p recorder --no-browser --paste
    """
    manager = app.manager(profile)
    if manager.profile.kind == KIND_SERVICE_APP:
        _mint(app, manager, as_json)
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
