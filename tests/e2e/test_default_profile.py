"""A default profile: `profile use`, what a second profile changes, and who wins (-p, then
WXTOKEN_PROFILE, then the default, then the only profile), on the full CLI and the fast path."""

from __future__ import annotations

import json

from tests.conftest import Emulator, Wx
from tests.e2e.test_help_completion import complete


def test_a_second_profile_says_how_to_keep_scripts_working(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, emu = logged_in
    only = wx("token", check=0).stdout.strip()  # one profile: it is implied
    proc = wx(
        "profile", "add", "lab", "--client-id", emu.client_id, "--redirect-uri",
        emu.redirect_uri, "--preset", "verint-calling", "--base-url", emu.base_url,
        "--client-secret-stdin", input=emu.client_secret + "\n", check=0,
    )  # fmt: skip
    assert "wxtoken profile use rec" in proc.stderr
    refused = wx("token", check=2)
    assert "several profiles (lab, rec)" in refused.stderr
    assert "wxtoken profile use lab" in refused.stderr
    wx("profile", "use", "rec", check=0)
    assert wx("token", check=0).stdout.strip() == only  # fast path: a key-file store
    assert wx("token", "--json", check=0).stdout  # the full CLI resolves it the same way
    assert json.loads(wx("token", "--json", check=0).stdout)["profile"] == "rec"
    # -p and WXTOKEN_PROFILE still win over the default (lab has no tokens: exit 4).
    assert wx("token", "-p", "lab").returncode == 4
    assert wx("token", env={"WXTOKEN_PROFILE": "lab"}).returncode == 4
    rows = json.loads(wx("profile", "list", "--json", check=0).stdout)
    assert {r["name"]: r["default"] for r in rows} == {"lab": False, "rec": True}
    assert "rec\t" in wx("profile", "list", check=0).stdout
    assert "(default)" in wx("profile", "list", check=0).stdout.split("rec\t")[1].splitlines()[0]
    assert complete(wx, "wxtoken profile show ") == ["lab", "rec"]


def test_removing_the_default_or_naming_nothing(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    assert "give a profile name, or --unset" in wx("profile", "use", check=2).stderr
    assert "no profile named 'nope'" in wx("profile", "use", "nope", check=2).stderr
    wx("profile", "use", "rec", check=0)
    wx("profile", "remove", "rec", "--yes", check=0)
    assert wx("profile", "list", "--json", check=0).stdout.strip() == "[]"
    wx.add_profile(emu, "again")
    assert wx("profile", "list", check=0).stdout.count("(default)") == 0
    wx("profile", "use", "again", check=0)
    wx("profile", "use", "--unset", check=0)
    assert json.loads(wx("profile", "list", "--json", check=0).stdout)[0]["default"] is False
