"""`wxtoken help [TOPIC|COMMAND]` and `wxtoken completion SHELL`."""

from __future__ import annotations

import textwrap

import click
import click.shell_completion

from .. import _local
from ..errors import UsageError
from .options import EXIT_CODES_HELP

SHELLS = ("bash", "zsh", "fish")


@click.command("help", epilog=EXIT_CODES_HELP)
@click.argument("topic", required=False)
@click.pass_context
def help_(ctx: click.Context, topic: str | None) -> None:
    """Help on a topic (environment) or a command.

    \b
    Examples:
      wxtoken help environment   # every variable wxtoken reads
      wxtoken help login         # the same as wxtoken login --help
    """
    root = ctx.find_root()
    if topic is None:
        click.echo(root.get_help())
        return
    if topic == "environment":
        width = max(len(name) for name, _ in _local.ENVIRONMENT)
        for name, meaning in _local.ENVIRONMENT:
            lines = textwrap.wrap(meaning, 98 - width) or [""]
            click.echo(f"{name:<{width}}  {lines[0]}")
            for more in lines[1:]:
                click.echo(f"{'':<{width}}  {more}")
        return
    group = root.command
    assert isinstance(group, click.Group)
    command = group.get_command(root, topic)
    if command is None:
        raise UsageError(
            f"no help topic or command named {topic!r}",
            fix="wxtoken help environment, or wxtoken --help for the commands",
        )
    with click.Context(command, info_name=topic, parent=root) as sub:
        click.echo(command.get_help(sub))


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell's completion script (commands, options and profile names).

    \b
    Examples:
      eval "$(wxtoken completion bash)"      # in ~/.bashrc
      eval "$(wxtoken completion zsh)"       # in ~/.zshrc
      wxtoken completion fish > ~/.config/fish/completions/wxtoken.fish
    """
    root = ctx.find_root()
    cls = click.shell_completion.get_completion_class(shell)
    assert cls is not None
    group = root.command
    click.echo(cls(group, {}, "wxtoken", "_WXTOKEN_COMPLETE").source())
