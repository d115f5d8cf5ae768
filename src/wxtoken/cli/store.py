"""`wxtoken store info | copy`: where the store is and what it holds, and moving it between
backends (the embedded SQLite file and a PostgreSQL database shared by several hosts)."""

from __future__ import annotations

import json
import os

import click

from .. import _local
from .._format import SCHEMA_VERSION
from ..errors import UsageError
from ..store import open_store
from .app import App, pass_app
from .options import EXIT_CODES_HELP


@click.group()
def store() -> None:
    """Where the store is, and copying it to another backend."""


@store.command(epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def info(app: App, as_json: bool) -> None:
    """Show the store's backend, location (never a password), key source, schema version,
    profile count and, for a shared store, the keeper that leads. Needs no key.

    \b
    Examples:
      wxtoken store info
      WXTOKEN_STORE=postgresql://wxtoken@db.internal/wxtoken wxtoken store info --json
    """
    st = app.store()
    exists = st.records.exists()
    meta = st.records.meta() if exists else {}
    shared = app.settings.store_url is not None
    facts: dict[str, object] = {
        "backend": "postgresql" if shared else "sqlite",
        "location": app.settings.store_location,
        "exists": exists,
        "key_source": meta.get("key_source"),
        "schema_version": SCHEMA_VERSION if exists else None,
        "profiles": len(st.records.profiles()) if exists else 0,
    }
    if shared:
        facts["keeper_leaders"] = st.records.leaders() if exists else []
    if as_json:
        click.echo(json.dumps(facts))
        return
    for key, value in facts.items():
        shown = ", ".join(map(str, value)) or "none" if isinstance(value, list) else value
        click.echo(f"{key.replace('_', ' ')}: {'-' if shown is None else shown}")


@store.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL",
    help="The target: postgresql://USER@HOST/DB (password from PGPASSWORD or ~/.pgpass) or "
    "sqlite:///PATH. It must hold no profiles yet.",
)
@pass_app
def copy(app: App, to: str) -> None:
    """Copy every profile, token, event and hand-off record into another (empty) store,
    sealing each secret again for it under the same key source. The source is only read.

    \b
    Examples:
      wxtoken store copy --to postgresql://wxtoken@db.internal/wxtoken
      WXTOKEN_STORE=postgresql://wxtoken@db.internal/wxtoken \\
        wxtoken store copy --to sqlite:///var/lib/wxtoken/wxtoken.db
    """
    from ..store.copy import copy_store

    if _local.store_password(to):
        raise UsageError(
            "the --to URL holds a password, which would be in the process list and history",
            fix="remove it from the URL and put it in ~/.pgpass (or PGPASSWORD)",
        )
    env = dict(os.environ, **{_local.ENV_STORE: to})
    try:
        target_settings = _local.Settings(env)
    except _local.SettingError as exc:
        raise UsageError(exc.message, fix=exc.fix) from None
    target = open_store(target_settings, clock=app.clock)
    shown = target_settings.store_location
    done = copy_store(app.store(), target, shown)
    click.echo(
        f"copied {done.profiles} profile(s), {done.tokens} token set(s) and {done.events} "
        f"event(s) from {app.settings.store_location} to {shown}"
    )
    click.echo(
        f'Next: point every host at it with {_local.ENV_STORE}={shown} (or store = "{shown}" '
        "in config.toml in the home) and run `wxtoken status`.",
        err=True,
    )
