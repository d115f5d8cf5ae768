"""`wxtoken status` (from stored metadata, no key, no network) and `wxtoken verify` (at Webex)."""

from __future__ import annotations

import click

from .. import _local
from ..status import DEFAULT_WARN_DAYS, exit_code, profile_status
from . import render
from .app import App, pass_app
from .options import EXIT_CODES_HELP, err, json_option, profile_option


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--all", "all_", is_flag=True, help="Every profile (the default without -p).")
@json_option("Print a JSON list on stdout.")
@click.option(
    "--warn-days",
    default=DEFAULT_WARN_DAYS,
    show_default=True,
    type=click.FloatRange(0, 3650),
    help="Warn when a refresh token expires within this many days.",
)
@pass_app
@click.pass_context
def status(
    ctx: click.Context,
    app: App,
    profile: str | None,
    all_: bool,
    as_json: bool,
    warn_days: float,
) -> None:
    """Show each profile's state (ok, warning, login_required) without printing any token.

    Exits with the worst state: 4 login_required, 3 warning, 0 ok. Needs no key and no network.

    \b
    Examples:
      wxtoken status
      wxtoken status --json --warn-days 30   # for monitoring
    """
    store = app.store()
    name = profile or app.settings.profile
    profiles = [store.get_profile(name)] if name and not all_ else store.list_profiles()
    now = app.clock()
    rows = [profile_status(store, p, now, warn_days) for p in profiles]
    if as_json:
        click.echo(render.to_json([r.as_json() for r in rows]))
    elif not rows:
        err("No profiles yet. Add one with `wxtoken profile add NAME ...`.")
    else:
        render.status_table(rows, now, _local.keeper_alive(app.settings.socket_path))
    ctx.exit(exit_code([r.state for r in rows]))


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@json_option()
@pass_app
@click.pass_context
def verify(ctx: click.Context, app: App, profile: str | None, as_json: bool) -> None:
    """Check the token at Webex: who it belongs to, its expiry and its scopes.

    \b
    Example:
      wxtoken verify -p recorder --json
    """
    manager = app.manager(profile)
    result = manager.verify()
    line = render.rotation_warning(manager.name, manager.last_refresh)
    if line:
        err(line)
    if as_json:
        click.echo(render.to_json(result.as_json()))
    else:
        err(render.verify_line(result))
    if not result.ok:
        err(
            "wxtoken: error: the grant lacks scopes the profile needs: "
            f"{' '.join(result.missing_scopes)}; fix: `wxtoken login -p {manager.name}` and "
            "accept all scopes (register them on the integration first)"
        )
        ctx.exit(1)
    if not as_json:
        err("All requested scopes granted.")
