"""The `wxtoken token` hot path: same answers as the full path, falls back on anything unusual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Emulator, Wx
from wxtoken import _fastpath
from wxtoken._local import DEFAULT_MIN_VALID, Settings


def test_defaults_agree() -> None:
    """The hot path, the full CLI and the library hand out tokens with the same margin."""
    from wxtoken.cli.tokens import token

    parsed = _fastpath._args(["token"], {})
    assert parsed is not None and parsed[1] == DEFAULT_MIN_VALID
    [option] = [p for p in token.params if p.name == "min_valid"]
    assert option.default == DEFAULT_MIN_VALID


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["token"], (None, 300)),
        (["token", "-p", "a"], ("a", 300)),
        (["token", "-pa"], ("a", 300)),
        (["token", "--profile=a", "--min-valid", "10"], ("a", 10)),
        (["token", "--min-valid=0", "--profile", "b"], ("b", 0)),
        (["token", "--help"], None),
        (["token", "--min-valid", "-5"], None),
        (["token", "--min-valid", "x"], None),
        (["token", "-p"], None),
        (["status"], None),
        ([], None),
    ],
)
def test_argument_parsing(argv: list[str], expected: object) -> None:
    assert _fastpath._args(argv, {}) == expected


def test_profile_from_environment() -> None:
    assert _fastpath._args(["token"], {"WXTOKEN_PROFILE": "env"}) == ("env", 300)
    assert _fastpath._args(["token", "-p", "x"], {"WXTOKEN_PROFILE": "env"}) == ("x", 300)


def test_hot_path_answers_without_click(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    code = (
        "import sys; sys.argv = ['wxtoken', 'token']\n"
        "from wxtoken import _fastpath\n"
        "rc = _fastpath.run(sys.argv[1:])\n"
        "heavy = [m for m in ('click', 'httpx2', 'rich', 'keyring', 'dataclasses') "
        "if m in sys.modules]\n"
        "print(rc, heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=wx.env, capture_output=True, text=True, timeout=30
    )
    assert proc.stderr.strip() == "0 []", proc.stderr
    assert proc.stdout.strip() == wx("token", check=0).stdout.strip()
    mark = emu.mark()
    wx("token", "--min-valid", "60", check=0)
    assert emu.ledger(mark) == []


def test_falls_back_for_other_key_sources(tmp_path: Path) -> None:
    assert _fastpath._token(None, 300, Settings({"WXTOKEN_HOME": str(tmp_path)})) is None
    both = {"WXTOKEN_HOME": str(tmp_path), "WXTOKEN_KEY_FILE": "k", "WXTOKEN_PASSPHRASE": "p"}
    assert _fastpath._token(None, 300, Settings(both)) is None
    assert _fastpath.run(["token", "--help"]) is None
