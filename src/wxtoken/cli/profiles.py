"""`wxtoken profile ...`: add, list, show and remove integration profiles."""

from __future__ import annotations

import sys

import click

from ..admin import add_client_secret, add_profile, drop_old_client_secret, update_profile
from ..errors import UsageError
from ..manager import resolve_profile_name
from . import render
from .app import App, pass_app
from .options import EXIT_CODES_HELP, err, json_option, profile_option, this_command


@click.group(epilog=EXIT_CODES_HELP)
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
@click.option("--client-id", required=True, help="The integration's Client ID.")
@click.option(
    "--redirect-uri",
    required=True,
    help="A redirect URI registered on the integration; http://127.0.0.1:PORT/... "
    "or http://localhost:PORT/... lets wxtoken catch the redirect itself.",
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
@click.option("--replace", is_flag=True, help="Overwrite an existing profile of that name.")
@json_option("Print the profile as JSON.")
@pass_app
def profile_add(
    app: App,
    name: str,
    client_id: str,
    redirect_uri: str,
    scopes: str | None,
    preset: str | None,
    base_url: str | None,
    client_secret_stdin: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Add a profile. The client secret comes from a hidden prompt, stdin or
    $WXTOKEN_CLIENT_SECRET, never from the command line.

    \b
    Example:
      wxtoken profile add recorder --client-id C0123... \\
        --redirect-uri http://127.0.0.1:8765/callback --preset verint-calling
    """
    app.profile_name = name
    store = app.store()
    prof = add_profile(
        name,
        client_id=client_id,
        client_secret=lambda: read_client_secret(app, client_secret_stdin),
        redirect_uri=redirect_uri,
        scopes=scopes,
        preset=preset,
        base_url=base_url,
        replace=replace,
        store=store,
    )
    if as_json:
        click.echo(
            render.to_json(render.profile_json(prof, store.token_record(prof.name) is not None))
        )
    err(
        f"Profile {prof.name!r} saved in {store.location} "
        f"(secrets encrypted; key: {render.key_text(store.key_source())})."
    )
    err(f"Next: wxtoken login -p {prof.name}")


@profile.command("set", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option("--redirect-uri", default=None, help="A new redirect URI (register it first).")
@click.option("--scopes", default=None, help="New space-separated scopes.")
@click.option("--preset", default=None, help="A scope preset instead of --scopes.")
@click.option("--base-url", default=None, help="A new Webex API base URL.")
@click.option("--client-secret-stdin", is_flag=True, help="Read a new client secret from stdin.")
@click.option(
    "--new-secret",
    is_flag=True,
    help="Ask for a new client secret (hidden prompt, or $WXTOKEN_CLIENT_SECRET).",
)
@click.option(
    "--add-client-secret",
    is_flag=True,
    help="Hold a second, newer client secret while rotating (from the prompt, stdin with "
    "--client-secret-stdin, or $WXTOKEN_CLIENT_SECRET); requests use it and fall back to the "
    "older one if Webex refuses it.",
)
@click.option(
    "--drop-old-client-secret",
    is_flag=True,
    help="Forget the older of two client secrets (once Webex has revoked it).",
)
@json_option("Print the profile as JSON.")
@pass_app
def profile_set(
    app: App,
    name: str,
    redirect_uri: str | None,
    scopes: str | None,
    preset: str | None,
    base_url: str | None,
    client_secret_stdin: bool,
    new_secret: bool,
    add_client_secret: bool,
    drop_old_client_secret: bool,
    as_json: bool,
) -> None:
    """Change settings of a profile; what is not given stays, and so do its tokens.

    A new secret (--client-secret-stdin or --new-secret) replaces the newest one held. To
    rotate without a gap, add the regenerated secret with --add-client-secret: requests use
    it, fall back to the older one with a warning if Webex refuses it, and status shows that
    two are held until --drop-old-client-secret.

    \b
    Examples:
      printf '%s\\n' "$SECRET" | wxtoken profile set recorder --client-secret-stdin
      printf '%s\\n' "$NEW" | wxtoken profile set recorder --add-client-secret --client-secret-stdin
      wxtoken profile set recorder --drop-old-client-secret
      wxtoken profile set recorder --redirect-uri http://127.0.0.1:8766/callback
    """
    app.profile_name = name
    if scopes is not None and preset is not None:
        raise UsageError(
            "give at most one of --scopes or --preset", fix="e.g. --preset verint-calling"
        )
    if add_client_secret and (new_secret or drop_old_client_secret):
        raise UsageError(
            "--add-client-secret adds the secret it reads; it cannot be combined with "
            "--new-secret or --drop-old-client-secret",
            fix=f"add the new one first: wxtoken profile set {name} --add-client-secret",
        )
    if add_client_secret or drop_old_client_secret:
        if any(c is not None for c in (redirect_uri, scopes, preset, base_url)):
            raise UsageError(
                "change the client secrets and the other settings in separate commands",
                fix=f"e.g. wxtoken profile set {name} --drop-old-client-secret",
            )
        _rotate_secret(app, name, add_client_secret, client_secret_stdin)
        return
    changes = (redirect_uri, scopes, preset, base_url)
    if all(c is None for c in changes) and not (client_secret_stdin or new_secret):
        raise UsageError(
            f"nothing to change for {name!r}",
            fix=f"e.g. wxtoken profile set {name} --redirect-uri URI (see --help)",
        )
    store = app.store()
    prof = update_profile(
        name,
        client_secret=(
            (lambda: read_client_secret(app, client_secret_stdin))
            if client_secret_stdin or new_secret
            else None
        ),
        redirect_uri=redirect_uri,
        scopes=scopes,
        preset=preset,
        base_url=base_url,
        store=store,
    )
    if as_json:
        click.echo(render.to_json(render.profile_json(prof, store.token_record(name) is not None)))
    err(f"Profile {name!r} updated; its tokens were kept.")


def _rotate_secret(app: App, name: str, add: bool, from_stdin: bool) -> None:
    store = app.store()
    if add:
        add_client_secret(name, lambda: read_client_secret(app, from_stdin), store=store)
        err(
            f"Profile {name!r} now holds two client secrets: requests use the new one and fall "
            "back to the older if Webex refuses it. Once the older is revoked at Webex: "
            f"wxtoken profile set {name} --drop-old-client-secret"
        )
    elif drop_old_client_secret(name, store=store):
        err(f"Profile {name!r}: the older client secret is forgotten; the newest stays.")
    else:
        err(f"Profile {name!r} holds one client secret; there was no older one to drop.")


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
    if as_json:
        click.echo(
            render.to_json(
                [render.profile_json(p, store.token_record(p.name) is not None) for p in profiles]
            )
        )
        return
    if not profiles:
        err("No profiles yet. Add one with `wxtoken profile add NAME ...`.")
        return
    for p in profiles:
        click.echo(f"{p.name}\t{p.client_id}\t{p.base_url}")


@profile.command("show")
@click.argument("name", required=False)
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
@click.argument("name")
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
