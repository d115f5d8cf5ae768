"""`wxtoken profile ...`: add, list, show and remove integration profiles."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .. import service_apps
from ..admin import (
    add_profile,
    add_service_app,
)
from ..errors import UsageError
from ..manager import resolve_profile_name
from . import render
from .app import App, pass_app
from .netopts import ca_file_option, proxy_option
from .options import (
    EXIT_CODES_HELP,
    WholeSummaries,
    complete_profiles,
    err,
    json_option,
    profile_option,
    this_command,
)

if TYPE_CHECKING:
    from ..profile import Profile


@click.group(cls=WholeSummaries, epilog=EXIT_CODES_HELP)
def profile() -> None:
    """Add, list, show and remove integration profiles."""


def read_client_secret(app: App, from_stdin: bool) -> str:
    """The secret from stdin, WXTOKEN_CLIENT_SECRET or a hidden prompt; never from argv.

    The store's key is settled first: on a first run without a keyring the passphrase prompt
    comes before the secret, so a secret is never typed for a command that then fails.
    """
    app.store().unlock(create=True)
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise UsageError(
                "no client secret arrived on stdin",
                fix="printf '%s\\n' \"$SECRET\" | " + this_command(),
            )
        return value
    if app.settings.client_secret:
        return app.settings.client_secret
    if sys.stdin.isatty():
        value = click.prompt("Client secret (input hidden)", hide_input=True, err=True).strip()
        if value:
            return value
    raise UsageError(
        "no client secret given (it is never taken as a command-line argument)",
        fix="printf '%s\\n' \"$SECRET\" | "
        + this_command(drop=("--new-secret",), add=("--client-secret-stdin",))
        + " (or run it on a terminal to be asked)",
    )


@profile.command("add", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option("--client-id", required=True, help="The integration's (or service app's) Client ID.")
@click.option(
    "--redirect-uri",
    default=None,
    help="A redirect URI registered on the integration; http://127.0.0.1:PORT/... "
    "or http://localhost:PORT/... lets wxtoken catch the redirect itself. Required for an "
    "integration; a service app has none.",
)
@click.option(
    "--service-app",
    is_flag=True,
    help="A service app: its tokens are minted through --minter for --target-org.",
)
@click.option("--app-id", default=None, help="Service app: its Application ID.")
@click.option("--target-org", default=None, help="Service app: the org id (or UUID) it serves.")
@click.option(
    "--minter",
    default=None,
    help="Service app: the profile whose token (with spark:applications_token) mints it.",
)
@click.option(
    "--scopes", default=None, help='Space-separated scopes, e.g. "spark:kms spark:people_read".'
)
@click.option(
    "--preset", default=None, help="A scope preset: verint-calling, calling-admin-recordings."
)
@click.option(
    "--base-url", default=None, help="Webex API base URL (default https://webexapis.com)."
)
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@proxy_option
@ca_file_option
@click.option("--replace", is_flag=True, help="Overwrite an existing profile of that name.")
@json_option("Print the profile as JSON.")
@pass_app
def profile_add(
    app: App,
    name: str,
    client_id: str,
    redirect_uri: str | None,
    service_app: bool,
    app_id: str | None,
    target_org: str | None,
    minter: str | None,
    scopes: str | None,
    preset: str | None,
    base_url: str | None,
    client_secret_stdin: bool,
    proxy: str | None,
    ca_file: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Add a profile. The client secret comes from a hidden prompt, stdin or
    $WXTOKEN_CLIENT_SECRET, never from the command line.

    \b
    Examples:
      wxtoken profile add recorder --client-id C0123... \\
        --redirect-uri http://127.0.0.1:8765/callback --preset verint-calling
      wxtoken profile add svc --service-app --app-id Y2lz... --client-id C0456... \\
        --target-org ORG_ID --minter minter --scopes "spark-admin:recordings_read"
    """
    app.profile_name = name
    store = app.store()
    network = {"proxy": proxy, "ca_file": ca_file}
    if service_app:
        prof = _add_service_app(
            app,
            name,
            client_id,
            redirect_uri,
            app_id,
            target_org,
            minter,
            scopes,
            preset,
            base_url,
            client_secret_stdin,
            replace,
            network,
        )
    else:
        if app_id is not None or target_org is not None or minter is not None:
            raise UsageError(
                "--app-id, --target-org and --minter are a service app's settings",
                fix=this_command(add=("--service-app",)),
            )
        if redirect_uri is None:
            raise UsageError(
                "an integration profile needs --redirect-uri (one registered on the integration)",
                fix=this_command(add=("--redirect-uri", "http://127.0.0.1:8765/callback")),
            )
        prof = _add_integration(
            app,
            name,
            client_id,
            redirect_uri,
            scopes,
            preset,
            base_url,
            client_secret_stdin,
            replace,
            network,
        )
    if as_json:
        click.echo(
            render.to_json(render.profile_json(prof, store.token_record(prof.name) is not None))
        )
    err(
        f"Profile {prof.name!r} saved in {store.location} "
        f"(secrets encrypted; key: {render.key_text(store.key_source())})."
    )
    others = [p.name for p in store.list_profiles() if p.name != prof.name]
    if len(others) == 1 and store.default_profile() is None:
        # Until now commands without -p meant the only profile; from here they need a choice.
        err(
            f"Note: commands without -p used {others[0]!r}, the only profile; now there are "
            f"two. Keep that for scripts: wxtoken profile use {others[0]}"
        )
    err(f"Next: wxtoken login -p {prof.name}")


def _add_integration(
    app: App,
    name: str,
    client_id: str,
    redirect_uri: str,
    scopes: str | None,
    preset: str | None,
    base_url: str | None,
    client_secret_stdin: bool,
    replace: bool,
    network: dict[str, str | None],
) -> Profile:
    return add_profile(
        name,
        client_id=client_id,
        client_secret=lambda: read_client_secret(app, client_secret_stdin),
        redirect_uri=redirect_uri,
        scopes=scopes,
        preset=preset,
        base_url=base_url,
        replace=replace,
        store=app.store(),
        proxy=network["proxy"],
        ca_file=network["ca_file"],
    )


def _add_service_app(
    app: App,
    name: str,
    client_id: str,
    redirect_uri: str | None,
    app_id: str | None,
    target_org: str | None,
    minter: str | None,
    scopes: str | None,
    preset: str | None,
    base_url: str | None,
    client_secret_stdin: bool,
    replace: bool,
    network: dict[str, str | None],
) -> Profile:
    if redirect_uri is not None:
        raise UsageError(
            "a service app has no redirect URI (its tokens are minted, not signed in for)",
            fix=this_command(drop=("--redirect-uri",)),
        )
    missing = [
        opt
        for opt, value in (("--app-id", app_id), ("--target-org", target_org), ("--minter", minter))
        if value is None
    ]
    if missing:
        raise UsageError(
            f"a service app needs {', '.join(missing)}",
            fix=f"wxtoken profile add {name} --service-app --app-id APP_ID --client-id "
            'CLIENT_ID --target-org ORG_ID --minter PROFILE --scopes "..."',
        )
    assert app_id is not None and target_org is not None and minter is not None
    return add_service_app(
        name,
        app_id=app_id,
        client_id=client_id,
        client_secret=lambda: read_client_secret(app, client_secret_stdin),
        target_org=target_org,
        minter=minter,
        scopes=scopes,
        preset=preset,
        base_url=base_url,
        replace=replace,
        store=app.store(),
        proxy=network["proxy"],
        ca_file=network["ca_file"],
    )


@profile.command("list")
@json_option("Print a JSON list.")
@pass_app
def profile_list(app: App, as_json: bool) -> None:
    """List profiles.

    \b
    Example:
      wxtoken profile list --json
    """
    store = app.store()
    profiles = store.list_profiles()
    default = store.default_profile()
    if as_json:
        click.echo(
            render.to_json(
                [
                    render.profile_json(
                        p, store.token_record(p.name) is not None, p.name == default
                    )
                    for p in profiles
                ]
            )
        )
        return
    if not profiles:
        err("No profiles yet. Add one with `wxtoken profile add NAME ...`.")
        return
    for p in profiles:
        mark = "\t(default)" if p.name == default else ""
        click.echo(f"{p.name}\t{p.client_id}\t{p.base_url}{mark}")


@profile.command("use", epilog=EXIT_CODES_HELP)
@click.argument("name", required=False, shell_complete=complete_profiles)
@click.option("--unset", is_flag=True, help="Have no default profile.")
@pass_app
def profile_use(app: App, name: str | None, unset: bool) -> None:
    """Make NAME the profile commands use without -p (WXTOKEN_PROFILE and -p still win).

    \b
    Examples:
      wxtoken profile use recorder
      wxtoken profile use --unset
    """
    if (name is None) == (not unset):
        raise UsageError("give a profile name, or --unset", fix="e.g. wxtoken profile use recorder")
    store = app.store()
    store.set_default_profile(name)
    if name is None:
        err("No default profile now: with several profiles, commands need -p NAME.")
    else:
        err(f"Default profile: {name!r}; commands use it when no -p or WXTOKEN_PROFILE is given.")


@profile.command("show")
@click.argument("name", required=False, shell_complete=complete_profiles)
@profile_option
@json_option("Print JSON.")
@pass_app
def profile_show(app: App, name: str | None, profile: str | None, as_json: bool) -> None:
    """Show one profile (never its secret).

    \b
    Example:
      wxtoken profile show recorder
    """
    store = app.store()
    p = store.get_profile(resolve_profile_name(store, name or profile or app.settings.profile))
    data = render.profile_json(p, store.token_record(p.name) is not None)
    if as_json:
        click.echo(render.to_json(data))
        return
    for line in render.profile_lines(data):
        click.echo(line)


@profile.command("remove")
@click.argument("name", shell_complete=complete_profiles)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option()
@pass_app
def profile_remove(app: App, name: str, yes: bool, as_json: bool) -> None:
    """Remove a profile and its local tokens (the grant at Webex stays; see `revoke`).

    \b
    Example:
      wxtoken profile remove old-recorder --yes
    """
    app.profile_name = name
    store = app.store()
    store.get_profile(name)
    service_apps.check_removable(store.list_profiles(), name)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"removing {name!r} needs confirmation", fix=f"wxtoken profile remove {name} --yes"
            )
        click.confirm(f"Remove profile {name!r} and its local tokens?", abort=True, err=True)
    store.remove_profile(name)
    if as_json:
        click.echo(render.to_json({"removed": name}))
    err(f"Profile {name!r} removed.")


# `profile set` lives in its own module; importing it registers it on the group above.
from . import profile_set  # noqa: E402, F401
