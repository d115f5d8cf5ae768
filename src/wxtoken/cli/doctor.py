"""`wxtoken doctor`: check the store, its key, the keeper, the clock and each profile at Webex."""

from __future__ import annotations

import click

from .. import doctor as checks
from . import render
from .app import App, pass_app
from .options import EXIT_CODES_HELP, json_option, profile_option

_MARK = {checks.OK: "ok", checks.WARNING: "WARNING", checks.PROBLEM: "PROBLEM"}


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--offline", is_flag=True, help="Skip the checks that ask Webex.")
@json_option("Print the findings as JSON on stdout.")
@pass_app
@click.pass_context
def doctor(ctx: click.Context, app: App, profile: str | None, offline: bool, as_json: bool) -> None:
    """Check everything a working setup needs, and say how to fix what is wrong.

    The store (location, permissions, owner, schema, free space, writable), its key, the OS
    keyring, the keeper, the proxy settings, and for each profile (or -p NAME): its grant, its
    Webex (reachable over valid TLS, the clock, and whether the authorize endpoint accepts the
    client id, redirect URI and scopes) and its loopback redirect port. Nothing signs in and
    nothing is refreshed. Exits 0 when all is well, 3 on a warning, else the exit code of the
    worst problem.

    \b
    Examples:
      wxtoken doctor
      wxtoken doctor -p recorder --offline
      wxtoken doctor --json | jq '.findings[] | select(.level != "ok")'
    """
    name = profile or app.settings.profile
    if name:
        app.profile_name = name
    findings = checks.run(
        app.settings,
        app.store(),
        [name] if name else None,
        offline=offline,
        transport=app.transport,
        clock=app.clock,
    )
    code = checks.exit_code(findings)
    if as_json:
        click.echo(render.to_json({"findings": [f.as_json() for f in findings], "exit_code": code}))
    else:
        for f in findings:
            where = f"{f.profile}: " if f.profile else ""
            click.echo(f"{_MARK[f.level]:8} {f.check:13} {where}{render.shown(f.detail, 400)}")
            if f.fix and f.level != checks.OK:
                click.echo(f"{'':8} {'':13} fix: {render.shown(f.fix, 400)}")
    ctx.exit(code)
