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
@click.option(
    "--probe",
    is_flag=True,
    help="First ask Webex whether each grant is alive (needs the key and the network; never "
    "refreshes).",
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
    probe: bool,
) -> None:
    """Show each profile's state (ok, warning, login_required) without printing any token.

    Exits with the worst state: 4 login_required, 3 warning, 0 ok. Without --probe it needs no
    key and no network, and shows the last probe's result and age.

    \b
    Examples:
      wxtoken status
      wxtoken status --json --warn-days 30   # for monitoring
      wxtoken status --probe                 # ask Webex now
    """
    store = app.store()
    name = profile or app.settings.profile
    profiles = [store.get_profile(name)] if name and not all_ else store.list_profiles()
    if probe:
        for p in profiles:
            record = store.token_record(p.name)
            if record is not None and record.status != "login_required":
                app.manager(p.name).probe()
    now = app.clock()
    rows = [profile_status(store, p, now, warn_days) for p in profiles]
    from ..network import Network

    # How each profile reaches Webex (no network needed to say): its proxy and trust source.
    nets = {p.name: Network.of(app.settings, p).describe(p.base_url) for p in profiles}
    if as_json:
        click.echo(
            render.to_json(
                [
                    dict(r.as_json(), proxy=nets[r.profile][0], trust=nets[r.profile][1])
                    for r in rows
                ]
            )
        )
    elif not rows:
        err("No profiles yet. Add one with `wxtoken profile add NAME ...`.")
    else:
        keeper = _local.keeper_alive(app.settings.socket_path)
        render.status_table(rows, now, keeper, app.colour(), nets)
        if app.settings.store_url is not None:  # keepers on several hosts: which one acts
            leaders = store.records.leaders()
            err(f"Store: {app.settings.store_location}; leading keeper: "
                f"{', '.join(leaders) or 'none running'}")  # fmt: skip
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
        for line in render.role_lines(result):
            err(line)
    if result.missing_scopes:
        err(
            "wxtoken: error: the grant lacks scopes the profile needs: "
            f"{' '.join(result.missing_scopes)}; fix: `wxtoken login -p {manager.name}` and "
            "accept all scopes (register them on the integration first)"
        )
    missing_roles = [r.role for r in result.roles if r.held is False]
    if missing_roles:
        err(
            f"wxtoken: error: the person who signed in is not a {', '.join(missing_roles)}; "
            f"fix: `wxtoken login -p {manager.name}` as a person who is"
        )
    if not result.ok:
        ctx.exit(1)
    if not as_json:
        err("All requested scopes granted.")
