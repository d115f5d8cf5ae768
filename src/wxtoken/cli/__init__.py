"""The `wxtoken` command: a lazy click group, and the one error boundary that maps errors to exits.

Conventions scripts rely on: stdout carries only what a script captures (a token, an export, a
--json document); everything else (messages, prompts, progress, the authorize URL) goes to
stderr. Commands live in modules by job and are imported only when run, so `wxtoken --help`
or one command never pays for the others (httpx2, rich and starlette load only where used).

    profiles.py  profile add | list | show | remove
    signin.py    login, exchange
    tokens.py    token, refresh, export, revoke, logout
    status.py    status, verify
    log.py       log
    store.py     store info | copy
    keeper.py    keep
    emulator.py  emulator
    console.py   console (the web console in wxtoken/console/)
    render.py    how results look; app.py the context object; options.py shared options
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

import click

from .._local import SettingError, forbid_core_dumps
from .._version import __version__
from ..errors import EXIT_USAGE, WxtokenError
from .app import COLOR_CHOICES, App
from .options import ARGV, EXIT_CODES_HELP, WholeSummaries

# command name -> "module:attribute", imported on first use; `wxtoken --help` lists them in this
# order, the order an admin meets them: set up, sign in, hand over, watch, diagnose, the rest.
COMMANDS = {
    "profile": "profiles:profile",
    "login": "signin:login",
    "exchange": "signin:exchange",
    "export": "tokens:export",
    "status": "status:status",
    "keep": "keeper:keep",
    "token": "tokens:token",
    "refresh": "tokens:refresh",
    "verify": "status:verify",
    "doctor": "doctor:doctor",
    "api": "api:api",
    "log": "log:log",
    "store": "store:store",
    "revoke": "tokens:revoke",
    "logout": "tokens:logout",
    "emulator": "emulator:emulator",
    "console": "console:console",
    "help": "helpcmd:help_",
    "completion": "helpcmd:completion",
}

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class WxtokenGroup(WholeSummaries):
    """Loads commands on demand, and turns every error of ours into one line and an exit code.

    The boundary sits in `invoke`, not only in `main`, so click's CliRunner (in-process tests)
    sees exactly the exit codes and messages a user sees.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGV] = list(args)  # so a fix can repeat the exact command (options.this_command)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        app = ctx.ensure_object(App)  # commands find it through pass_app; closed below
        try:
            return super().invoke(ctx)
        except WxtokenError as exc:
            exc.for_profile(app.profile_name or "NAME")
            click.echo(f"wxtoken: error: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)
        except SettingError as exc:
            click.echo(f"wxtoken: error: {exc.message}; fix: {exc.fix}", err=True)
            ctx.exit(EXIT_USAGE)
        finally:
            app.close()


@click.group(
    cls=WxtokenGroup,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="wxtoken", message="%(prog)s %(version)s")
@click.option(
    "--color",
    type=click.Choice(COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="Colour in tables: auto (a terminal, unless NO_COLOR is set), always or never.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Log each HTTP request (method, address, status, time, trackingId) and each lock "
    "wait to stderr; never a secret. Also WXTOKEN_DEBUG=1.",
)
@click.pass_context
def cli(ctx: click.Context, color: str, debug: bool) -> None:
    """Create, store, refresh, hand over and watch OAuth tokens for Webex integrations.

    \b
    Typical first run (a recorder such as Verint):
      wxtoken profile add recorder --client-id C123... \\
          --redirect-uri http://127.0.0.1:8765/callback --preset verint-calling
      wxtoken login -p recorder
      wxtoken export -p recorder      # the refresh token for the recorder
      wxtoken status                  # exit 3 when a refresh token nears its end

    Data lives in $WXTOKEN_HOME (default: the platform's user data directory).
    """
    app = ctx.ensure_object(App)
    app.color = color
    if debug or app.settings.debug:
        log_to_stderr()


def log_to_stderr() -> None:
    """wxtoken's debug lines on stderr (the loggers say only what is safe to show)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("wxtoken: debug: %(message)s"))
    root = logging.getLogger("wxtoken")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: run the group, map what click leaves to exit codes."""
    # Everything wxtoken creates is private from the first byte, whatever the caller's umask;
    # and the store's key and tokens in memory never end up in a core file.
    os.umask(0o077)
    forbid_core_dumps()
    try:
        rv = cli.main(args=argv, prog_name="wxtoken", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("wxtoken: interrupted; nothing was half-written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("wxtoken: aborted", err=True)
        sys.exit(EXIT_USAGE if not sys.stdin.isatty() else 1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("wxtoken: interrupted; nothing was half-written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


__all__ = ["COMMANDS", "App", "WxtokenGroup", "cli", "main"]
