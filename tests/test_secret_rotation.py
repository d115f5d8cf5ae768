"""Two client secrets held during a rotation: sealed apart, carried through profile edits,
dropped with the integration they belong to, and readable as a count without the key."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_store import make_store, seed
from wxtoken.admin import add_profile
from wxtoken.errors import TamperedData, UsageError
from wxtoken.store.sealed import SealedStore


def db(store: SealedStore) -> sqlite3.Connection:
    return sqlite3.connect(store.location)


def test_newest_first_and_at_most_two(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store, secret="CS-one")
    assert store.client_secrets("a") == ("CS-one",) and store.secrets_held("a") == (1, None)
    store.add_client_secret("a", "CS-two")
    assert store.client_secrets("a") == ("CS-two", "CS-one")
    held, added = store.secrets_held("a")
    assert held == 2 and added is not None
    with pytest.raises(UsageError, match="already holds two") as exc:
        store.add_client_secret("a", "CS-three")
    assert exc.value.fix is not None and "--drop-old-client-secret" in exc.value.fix
    assert store.client_secrets("a") == ("CS-two", "CS-one")  # nothing half-written
    assert store.drop_old_client_secret("a") and store.client_secrets("a") == ("CS-two",)
    assert not store.drop_old_client_secret("a")
    with pytest.raises(UsageError, match="already holds that client secret"):
        store.add_client_secret("a", "CS-two")
    kinds = [e.kind for e in store.events("a", ("client_secret_added", "client_secret_dropped"))]
    assert kinds == ["client_secret_dropped", "client_secret_added"]
    assert all("CS-" not in str(e.detail) for e in store.events("a"))


def test_the_two_cannot_be_swapped_in_the_file(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store, secret="CS-one")
    store.add_client_secret("a", "CS-two")
    with db(store) as conn:
        conn.execute(
            "UPDATE profiles SET client_secret = old_client_secret, "
            "old_client_secret = client_secret WHERE name = 'a'"
        )
    with pytest.raises(TamperedData):
        make_store(tmp_path).client_secrets("a")


def test_profile_edits_keep_the_older_secret_but_a_new_integration_drops_it(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    seed(store, secret="CS-one")
    store.add_client_secret("a", "CS-two")
    old = store.get_profile("a")
    # An edit re-seals both for the new settings (they are bound into the associated data).
    store.save_profile(replace(old, redirect_uri="http://127.0.0.1:2/cb"), None, replace=True)
    assert make_store(tmp_path).client_secrets("a") == ("CS-two", "CS-one")
    # A new secret replaces the newest only.
    store.save_profile(old, "CS-fixed", replace=True)
    assert store.client_secrets("a") == ("CS-fixed", "CS-one")
    # Another client id is another integration: its secrets are not this one's.
    store.save_profile(replace(old, client_id="Cother"), None, replace=True)
    assert store.client_secrets("a") == ("CS-fixed",)
    assert store.secrets_held("a") == (1, None)


def test_replacing_a_profile_whole_forgets_the_older_secret(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store, secret="CS-one")
    store.add_client_secret("a", "CS-two")
    p = store.get_profile("a")
    add_profile(
        "a",
        client_id=p.client_id,
        client_secret="CS-three",
        redirect_uri=p.redirect_uri,
        scopes=p.scopes,
        base_url=p.base_url,
        replace=True,
        store=store,
    )
    assert store.client_secrets("a") == ("CS-three",)


def test_the_count_is_read_without_the_key(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store)
    store.add_client_secret("a", "CS-two")
    keyless = make_store(tmp_path, WXTOKEN_KEY_FILE=str(tmp_path / "absent"))
    assert keyless.secrets_held("a")[0] == 2
