"""`wxtoken profile set`: change one setting of a profile, or rotate its client secret."""

from __future__ import annotations

import click

from ..admin import add_client_secret, drop_old_client_secret, update_profile
from ..errors import UsageError
from . import render
from .app import App, pass_app
from .netopts import ca_file_option, proxy_option
from .options import EXIT_CODES_HELP, complete_profiles, err, json_option
from .profiles import profile, read_client_secret


@profile.command("set", epilog=EXIT_CODES_HELP)
@click.argument("name", shell_complete=complete_profiles)
@click.option("--redirect-uri", default=None, help="A new redirect URI (register it first).")
@click.option("--scopes", default=None, help="New space-separated scopes.")
@click.option("--preset", default=None, help="A scope preset instead of --scopes.")
@click.option("--base-url", default=None, help="A new Webex API base URL.")
@click.option("--minter", default=None, help="Service app: a new profile to mint it through.")
@proxy_option
@ca_file_option
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
    minter: str | None,
    proxy: str | None,
    ca_file: str | None,
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
      wxtoken profile set recorder --proxy http://proxy.corp:3128 --ca-file /etc/corp-ca.pem
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
        if any(
            c is not None for c in (redirect_uri, scopes, preset, base_url, minter, proxy, ca_file)
        ):
            raise UsageError(
                "change the client secrets and the other settings in separate commands",
                fix=f"e.g. wxtoken profile set {name} --drop-old-client-secret",
            )
        _rotate_secret(app, name, add_client_secret, client_secret_stdin)
        return
    changes = (redirect_uri, scopes, preset, base_url, minter, proxy, ca_file)
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
        minter=minter,
        store=store,
        proxy=proxy,
        ca_file=ca_file,
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
