"""`wxtoken help environment`, each command's --help naming the variables, and shell completion
of commands and profile names through click's completion environment, with the installed CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Emulator, Wx
from wxtoken import _local

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_variable_is_listed_once_and_in_the_readme(wx: Wx) -> None:
    names = [name for name, _ in _local.ENVIRONMENT]
    declared = [v for k, v in vars(_local).items() if k.startswith("ENV_")]
    assert set(declared) <= set(names) and len(names) == len(set(names))
    out = wx("help", "environment", check=0).stdout
    settings = README[README.index("### Settings") : README.index("### Exit codes")]
    for name in names:
        assert re.search(rf"^{re.escape(name)}\s", out, re.M), name
        for part in name.split(", "):
            assert f"`{part}`" in settings, part
    assert "WXTOKEN_HTTP_DEADLINE" in wx("login", "--help", check=0).stdout
    assert "Usage: wxtoken login" in wx("help", "login", check=0).stdout
    proc = wx("help", "nonsense", check=2)
    assert "no help topic or command named 'nonsense'" in proc.stderr


def complete(wx: Wx, words: str) -> list[str]:
    """What bash completion offers for the words typed so far (click's bash protocol)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"_WXTOKEN_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    proc = wx(env=env, check=0)
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line]


def test_profile_names_complete_after_p(wx: Wx, emu: Emulator) -> None:
    assert complete(wx, "wxtoken token -p ") == []  # no store yet: nothing, and no error
    wx.add_profile(emu, "recorder")
    wx.add_profile(emu, "reports")
    wx.add_profile(emu, "lab")
    assert complete(wx, "wxtoken token -p ") == ["lab", "recorder", "reports"]
    assert complete(wx, "wxtoken status --profile re") == ["recorder", "reports"]
    assert "doctor" in complete(wx, "wxtoken d")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(wx: Wx, shell: str) -> None:
    script = wx("completion", shell, check=0).stdout
    assert "_WXTOKEN_COMPLETE" in script and f"{shell}_complete" in script


def test_commands_are_listed_in_the_order_an_admin_uses_them_and_never_cut(wx: Wx) -> None:
    from wxtoken.cli import COMMANDS

    text = wx("--help", check=0).stdout
    listed = text[text.index("Commands:") : text.index("Exit codes:")]
    rows = [line for line in listed.splitlines()[1:] if line.startswith("  ") and line.strip()]
    names = [line.split()[0] for line in rows if not line.startswith("   ")]
    assert names == list(COMMANDS)
    assert not any(line.rstrip().endswith("...") for line in rows)  # click's cut-off mark
    sub = wx("profile", "--help", check=0).stdout
    sub_rows = sub[sub.index("Commands:") : sub.index("Exit codes:")].splitlines()
    assert not any(line.rstrip().endswith("...") for line in sub_rows)
    assert "seed" not in text + wx("exchange", "--help", check=0).stdout


def test_colour_follows_the_option(logged_in: tuple[Wx, Emulator]) -> None:
    wx, _ = logged_in
    assert "\x1b[" in wx("--color", "always", "status", check=0).stdout
    assert "\x1b[" not in wx("--color", "never", "status", check=0).stdout
    # Not a terminal, NO_COLOR set (the test environment's default): no colour.
    assert "\x1b[" not in wx("status", check=0).stdout
