"""`wxtoken api`: call a Webex REST API with the profile's token, as `gh api` does for GitHub."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import api as webex_api
from ..errors import UsageError
from . import render
from .app import App, pass_app
from .options import EXIT_CODES_HELP, profile_option


def _fields(pairs: tuple[str, ...]) -> dict[str, str]:
    fields = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise UsageError(f"--field takes KEY=VALUE, not {pair!r}", fix="e.g. --field max=10")
        fields[key] = value
    return fields


def _input(source: str | None) -> bytes | None:
    if source is None:
        return None
    try:
        return sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read {source} ({exc.strerror})",
            fix="give a readable JSON file, or - for stdin",
        ) from None


@click.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("-X", "--method", default="GET", show_default=True, help="The HTTP method.")
@click.option(
    "-f",
    "--field",
    "fields",
    multiple=True,
    help="KEY=VALUE: a query parameter of a GET or DELETE, a JSON body field otherwise "
    "(repeatable; values are strings).",
)
@click.option(
    "--input", "source", default=None, help="A JSON request body from FILE, or - for stdin."
)
@click.option(
    "--paginate", is_flag=True, help="Follow Webex's Link rel=next pages; print all items."
)
@click.argument("path")
@pass_app
def api(
    app: App,
    profile: str | None,
    method: str,
    fields: tuple[str, ...],
    source: str | None,
    paginate: bool,
    path: str,
) -> None:
    """Call a Webex API with the profile's token and print Webex's JSON.

    The token is refreshed first if needed (single flight, as everywhere), and once more if
    Webex answers 401; it goes only into the Authorization header. PATH is relative to the
    profile's base URL; a URL to another host is refused. Exits 1 on an HTTP error (its
    message and trackingId shown), 4 when the grant needs a new sign-in, 5 when Webex is
    unreachable.

    \b
    Examples:
      wxtoken api /v1/people/me
      wxtoken api /v1/people --field email=someone@example.com
      wxtoken api /v1/people --paginate --field max=100
      wxtoken api -X POST /v1/messages -f toPersonEmail=a@example.com -f text=hello
      wxtoken api -X POST /v1/messages --input message.json
    """
    manager = app.manager(profile)
    result = webex_api.call(
        manager,
        method,
        path,
        fields=_fields(fields),
        body=_input(source),
        paginate=paginate,
    )
    if result.data is not None:
        click.echo(render.to_json(result.data))
