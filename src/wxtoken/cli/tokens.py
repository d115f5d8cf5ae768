"""Using the tokens: `token`, `refresh`, `export`, `revoke`, `logout`."""

from __future__ import annotations

import sys

import click

from .. import _local
from .._fastpath import ask_keeper_line
from ..errors import UsageError
from ..manager import TokenManager
from ..reasons import RECENT, Forced
from ..token import iso
from . import render
from .app import App, pass_app
from .options import EXIT_CODES_HELP, err, profile_option


def _warn_rotation(manager: TokenManager) -> None:
    line = render.rotation_warning(manager.name, manager.last_refresh)
    if line:
        err(line)


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--min-valid",
    default=_local.DEFAULT_MIN_VALID,
    show_default=True,
    type=click.IntRange(0, _local.MAX_MIN_VALID),
    help="Refresh first if the token would expire within this many seconds.",
)
@pass_app
@click.pass_context
def token(ctx: click.Context, app: App, profile: str | None, min_valid: int) -> None:
    """Print a valid access token on stdout (and nothing else).

    \b
    Example:
      curl -H "Authorization: Bearer $(wxtoken token -p recorder)" \\
        https://webexapis.com/v1/people/me
    """
    answered = ask_keeper_line(profile or app.settings.profile, min_valid, app.settings)
    if answered is not None:
        ctx.exit(answered)
    manager = app.manager(profile)
    tok = manager.token(min_valid)
    left = tok.access_expires_at - app.clock()
    if left < min_valid:
        err(
            f"wxtoken: warning: the access token has only {int(left)} s left, less than "
            f"--min-valid {min_valid}, even after a refresh"
        )
    _warn_rotation(manager)
    click.echo(tok.access_token)


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--force", is_flag=True, help="Refresh even if another process refreshed in the last minute."
)
@pass_app
def refresh(app: App, profile: str | None, force: bool) -> None:
    """Refresh the access token now (the refresh token is kept or rotated as Webex decides).

    \b
    Example:
      wxtoken refresh -p recorder --force
    """
    manager = app.manager(profile)
    result = manager.refresh(Forced(unless_newer_than=None if force else RECENT))
    err(render.refreshed_line(manager.name, result, app.clock()))
    _warn_rotation(manager)


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(render.EXPORT_FORMATS),
    default="refresh-token",
    show_default=True,
    help="What to print.",
)
@click.option(
    "--mark-current",
    is_flag=True,
    help="Print nothing: record that the recorder already holds the current refresh token "
    "(updated by other means).",
)
@pass_app
def export(app: App, profile: str | None, fmt: str, mark_current: bool) -> None:
    """Hand the refresh token (and client credentials) to a recorder's data source.

    Records a hand-off event (time, format, fingerprint; never the token), so wxtoken can tell
    you later that a rotated token made this copy stale.

    \b
    Examples:
      wxtoken export -p recorder                       # just the refresh token
      wxtoken export -p recorder --format json          # client_id, client_secret, ...
      eval "$(wxtoken export -p recorder --format env)" # WEBEX_* variables
      wxtoken export -p recorder --format verint        # Verint's data-source fields
    """
    manager = app.manager(profile)
    if mark_current:
        manager.mark_current()
        err(f"Recorded that the recorder holds {manager.name!r}'s current refresh token.")
        return
    handoff = manager.export(fmt)
    _warn_rotation(manager)
    click.echo(render.handoff_output(handoff, fmt))
    err(
        f"Exported {manager.name!r} ({fmt}); the hand-off is recorded. Refresh token expires "
        f"{iso(handoff.refresh_expires_at)}."
    )


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def revoke(app: App, profile: str | None, yes: bool) -> None:
    """Revoke the integration's grant at Webex, then remove the local tokens.

    Needs identity:tokens_write and an admin role. The profile itself stays.

    \b
    Example:
      wxtoken revoke -p recorder --yes
    """
    manager = app.manager(profile)
    siblings = manager.siblings()
    also = (
        f" This also ends the grants of: {', '.join(siblings)} (same integration, same org)."
        if siblings
        else ""
    )
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"revoking needs confirmation.{also}",
                fix=f"wxtoken revoke -p {manager.name} --yes",
            )
        click.confirm(
            f"Revoke every grant of {manager.profile.client_id} in this org at Webex? "
            f"Recorders using it stop working.{also}",
            abort=True,
            err=True,
        )
    marked = manager.revoke()
    err(
        f"Revoked at Webex and removed locally for {manager.name!r}. Sign in again with "
        f"`wxtoken login -p {manager.name}`."
    )
    if marked:
        err(f"Marked login_required (revoked with it): {', '.join(marked)}.")


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@pass_app
def logout(app: App, profile: str | None) -> None:
    """Remove the local tokens only (the grant at Webex stays valid; see `revoke`).

    \b
    Example:
      wxtoken logout -p recorder
    """
    manager = app.manager(profile)
    had = manager.logout()
    err(
        f"Local tokens of {manager.name!r} {'removed' if had else 'were already absent'}; "
        "the grant at Webex is untouched."
    )
