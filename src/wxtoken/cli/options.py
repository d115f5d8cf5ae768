"""Options and help text shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
import click.shell_completion

from .. import _local

F = TypeVar("F", bound=Callable[..., object])

EXIT_CODES_HELP = (
    """\b
Exit codes:
  0  success
  1  other error (wrong client id/secret, redirect URI rejected, state mismatch, ...)
  2  usage error
  3  attention: a refresh token is inside the warning window (status)
  4  login required (no tokens; refresh token expired, revoked or rejected;
     code invalid, expired or used; consent denied)
  5  Webex unreachable, failing after retries, or answering malformed responses
  6  storage or key error (wrong passphrase, tampered data, unsafe permissions)
"""
    + "\n\b\nEnvironment (what each means: wxtoken help environment):\n"
    + "\n".join(f"  {name}" for name, _ in _local.ENVIRONMENT)
)

PROFILE_HELP = "Profile to use (default: $WXTOKEN_PROFILE, or the only profile)."


def complete_profiles(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Profile names for shell completion: read from the store without its key; nothing (never
    an error) where there is no store or it cannot be read."""
    from ..errors import WxtokenError
    from ..store import open_store

    try:
        store = open_store(_local.Settings())
        try:
            names = [p.name for p in store.list_profiles()]
        finally:
            store.close()
    except (WxtokenError, _local.SettingError, OSError):
        return []
    return [click.shell_completion.CompletionItem(n) for n in names if n.startswith(incomplete)]


def profile_option(f: F) -> F:
    return click.option(
        "-p",
        "--profile",
        "profile",
        default=None,
        help=PROFILE_HELP,
        shell_complete=complete_profiles,
    )(f)


def json_option(help: str = "Print the result as JSON on stdout.") -> Callable[[F], F]:
    def decorate(f: F) -> F:
        return click.option("--json", "as_json", is_flag=True, help=help)(f)

    return decorate


ARGV = "wxtoken.argv"  # ctx.meta key: the command line as given (it never holds a secret)


def this_command(*, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> str:
    """The command being run, as a line to paste (minus `drop`, plus `add`)."""
    import shlex

    args = click.get_current_context().meta.get(ARGV, [])
    return shlex.join(["wxtoken", *(a for a in args if a not in drop), *add])


def err(text: str) -> None:
    """A message for the person: stderr, so stdout stays what scripts capture."""
    click.echo(text, err=True)


class WholeSummaries(click.Group):
    """A group whose --help shows each command's whole first paragraph, wrapped, never cut
    off with "..." as click does by default."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                first = (command.short_help or command.help or "").split("\n\n")[0]
                rows.append((name, " ".join(first.split())))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
