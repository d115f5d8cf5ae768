"""How `wxtoken emulator`'s options build the emulator: `--redirect-uri` adds to the built-in
redirect URIs (or, with `--replace-redirect-uris`, replaces them), on the built-in integration,
a configured one and a restored state file alike; a state file is written at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wxtoken.emulator.server import EmulatorOptions, build
from wxtoken.errors import UsageError

MINE = "http://127.0.0.1:9/mine"
LOOPBACK = "http://127.0.0.1:8765/callback"
POSTMAN = "https://oauth.pstmn.io/v1/callback"


def uris(**opts: object) -> list[str]:
    emu, seed = build(EmulatorOptions(**opts))  # type: ignore[arg-type]
    integ = next(iter(emu.integrations.values()))
    assert seed["redirect_uris"] == integ.redirect_uris  # the banner shows what is registered
    return list(integ.redirect_uris)


def test_redirect_uri_adds_first_and_keeps_the_built_in_ones() -> None:
    built_in = uris()
    assert LOOPBACK in built_in and POSTMAN in built_in
    added = uris(redirect_uris=[MINE])
    assert added == [MINE, *built_in]  # first, so the banner's example uses it
    # Given twice, or already built in: registered once.
    assert uris(redirect_uris=[MINE, LOOPBACK, MINE]) == [MINE, LOOPBACK] + [
        u for u in built_in if u != LOOPBACK
    ]


def test_replace_registers_only_the_given_ones() -> None:
    replaced = uris(redirect_uris=[MINE, POSTMAN], replace_redirect_uris=True)
    assert replaced[:2] == [MINE, POSTMAN] and LOOPBACK not in replaced
    with pytest.raises(UsageError, match="needs at least one --redirect-uri"):
        build(EmulatorOptions(replace_redirect_uris=True))


def test_a_configured_integration_gets_them_the_same_way(tmp_path: Path) -> None:
    config = tmp_path / "emu.toml"
    config.write_text(
        '[[users]]\nemail = "a@example.com"\n\n'
        '[[integrations]]\nclient_id = "Cone"\nclient_secret = "s"\n'
        f'redirect_uris = ["{LOOPBACK}"]\nscopes = ["spark:kms"]\n'
    )
    assert uris(config=config) == [LOOPBACK]
    assert uris(config=config, redirect_uris=[MINE]) == [MINE, LOOPBACK]
    assert uris(config=config, redirect_uris=[MINE], replace_redirect_uris=True) == [MINE]


def test_a_state_file_is_written_at_start_and_keeps_the_integration(tmp_path: Path) -> None:
    home = tmp_path / "emu"
    home.mkdir(mode=0o700)
    state = home / "state.json"
    _, seed = build(EmulatorOptions(state_file=state))
    saved = json.loads(state.read_text())  # before any request
    assert [i["client_id"] for i in saved["integrations"]] == [seed["client_id"]]
    _, seed2 = build(EmulatorOptions(state_file=state, redirect_uris=[MINE]))
    assert (seed2["client_id"], seed2["client_secret"]) == (
        seed["client_id"],
        seed["client_secret"],
    )
    assert seed2["redirect_uris"] == [MINE, *seed["redirect_uris"]]
    _, seed3 = build(
        EmulatorOptions(state_file=state, redirect_uris=[MINE], replace_redirect_uris=True)
    )
    assert seed3["client_id"] == seed["client_id"] and seed3["redirect_uris"] == [MINE]
