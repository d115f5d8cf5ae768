"""`wxtoken log`: the append-only event log, oldest first; fingerprints only, never a secret."""

from __future__ import annotations

import json
from datetime import datetime

import click

from ..durations import EXAMPLES, parse_duration
from ..errors import UsageError, clean_server_text
from ..store import Event
from .app import App, pass_app
from .options import EXIT_CODES_HELP, profile_option

MAX_EVENTS = 100_000


def local_time(ts: float) -> str:
    """Local time with its offset, as an admin reads a log."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def as_json(e: Event) -> dict[str, object]:
    return {"at": local_time(e.at), "profile": e.profile, "kind": e.kind, "detail": e.detail}


def as_line(e: Event) -> str:
    detail = " ".join(
        f"{k}={clean_server_text(json.dumps(v) if not isinstance(v, str) else v, 200)}"
        for k, v in sorted(e.detail.items())
        if v is not None
    )
    return f"{local_time(e.at)}  {e.profile or '-':<16} {e.kind:<16} {detail}".rstrip()


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--since", default=None, help=f"Only events this recent ({EXAMPLES}).")
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind (repeatable).")
@click.option("--json", "as_json_", is_flag=True, help="Print one JSON object per line.")
@pass_app
def log(
    app: App, profile: str | None, since: str | None, kinds: tuple[str, ...], as_json_: bool
) -> None:
    """Show the event log: sign-ins, refreshes, rotations, exports, probes, revocations,
    alerts sent and failures, with causes. Needs no key.

    \b
    Examples:
      wxtoken log -p recorder --since 7d
      wxtoken log --kind refresh_failed --kind login_required --json
    """
    start = None
    if since is not None:
        seconds = parse_duration(since)
        if seconds is None:
            raise UsageError(f"--since {since!r} is not {EXAMPLES}", fix="e.g. --since 7d")
        start = app.clock() - seconds
    store = app.store()
    name = profile or app.settings.profile
    if name:
        store.get_profile(name)  # a typo is a usage error, not an empty log
    events = list(reversed(store.events(name, kinds, MAX_EVENTS, since=start)))
    for e in events:
        click.echo(json.dumps(as_json(e)) if as_json_ else as_line(e))
