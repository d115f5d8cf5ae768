"""A store written by release 0.1.0 (tests/fixtures/store-v1) opens, upgrades and works."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import store_at
from wxtoken import TokenManager
from wxtoken._format import SCHEMA_VERSION
from wxtoken.emulator import Emulator, EmulatorTransport, ManualClock
from wxtoken.errors import StorageError
from wxtoken.store.cipher import CURRENT_LAYOUT, keycheck_layout
from wxtoken.store.sealed import SealedStore

FIXTURE = Path(__file__).parent / "fixtures" / "store-v1"
META: dict[str, Any] = json.loads((FIXTURE / "meta.json").read_text())


def copy_fixture(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    shutil.copy(FIXTURE / "wxtoken.db", home / "wxtoken.db")
    key = tmp_path / "store.key"
    shutil.copy(FIXTURE / "store.key", key)
    for p in (home / "wxtoken.db", key):
        p.chmod(0o600)
    return home, {"WXTOKEN_KEY_FILE": str(key)}


def version(home: Path) -> int:
    with sqlite3.connect(home / "wxtoken.db") as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_fixture_is_a_schema_1_store() -> None:
    with sqlite3.connect(f"file:{FIXTURE / 'wxtoken.db'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_status_upgrades_the_schema_without_the_key(tmp_path: Path) -> None:
    home, _ = copy_fixture(tmp_path)
    store = store_at(home, {})  # no key at all: monitoring must keep working
    [profile] = store.list_profiles()
    assert profile.name == "rec" and profile.kind == "integration" and profile.extra == {}
    rec = store.token_record("rec")
    assert rec is not None and rec.generation == 2 and rec.last_error_code is None
    assert rec.identity.email == META["status"][0]["user"]
    assert version(home) == SCHEMA_VERSION
    assert store.secrets_held("rec") == (1, None)  # schema 3: no rotation in progress
    kinds = [e.kind for e in store.events(kinds=("schema_upgraded",))]
    assert kinds == ["schema_upgraded"]
    # The history written by 0.1.0 is all still there.
    old = {e.kind for e in store.events("rec")}
    assert {"login", "export", "refresh", "profile_added"} <= old


def test_the_key_opens_an_upgraded_store_and_reseals_it_once(tmp_path: Path) -> None:
    home, env = copy_fixture(tmp_path)
    store = store_at(home, env)
    loaded = store.load_token("rec")
    assert loaded is not None and loaded[1].refresh_token == META["refresh_token_at_export"]
    assert store.client_secret("rec")  # opens (after re-sealing in the current layout)
    assert [e.kind for e in store.events(kinds=("store_upgraded",))] == ["store_upgraded"]
    with sqlite3.connect(home / "wxtoken.db") as db:
        check = db.execute("SELECT value FROM meta WHERE key='keycheck'").fetchone()[0]
    assert isinstance(store, SealedStore)
    assert keycheck_layout(store._get_cipher(), check) == CURRENT_LAYOUT
    # A second opener finds nothing left to do.
    again = store_at(home, env)
    assert again.client_secret("rec") == store.client_secret("rec")
    assert len(again.events(kinds=("store_upgraded",))) == 1


def test_upgraded_store_refreshes_against_the_same_emulator(tmp_path: Path) -> None:
    """The grant in the fixture still works: restore the emulator it was made with (in process,
    on a clock two hours after the fixture was written: the access token has expired), and the
    upgraded store refreshes through it."""
    home, env = copy_fixture(tmp_path)
    clock = ManualClock(META["created_at"] + 7200)
    emu = Emulator.restore(json.loads((FIXTURE / "emulator-state.json").read_text()), clock=clock)
    store = store_at(home, env, clock=clock)
    with TokenManager("rec", store=store, clock=clock, transport=EmulatorTransport(emu)) as tm:
        before = tm.store.token_record("rec")
        token = tm.access_token()  # expired: refreshed with the fixture's refresh token
        after = tm.store.token_record("rec")
    assert before is not None and after is not None and token
    assert after.generation == before.generation + 1
    assert after.identity == before.identity  # a refresh keeps who signed in


def test_a_store_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    home, env = copy_fixture(tmp_path)
    with sqlite3.connect(home / "wxtoken.db") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = (home / "wxtoken.db").read_bytes()
    with pytest.raises(StorageError, match="newer wxtoken"):
        store_at(home, env).list_profiles()
    assert (home / "wxtoken.db").read_bytes() == before
