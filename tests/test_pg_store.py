"""The shared store on a real PostgreSQL server: same contract as the embedded one, sealed the
same way, schema versions refused across releases, and the URL's password never shown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tests.conftest import WXTOKEN, base_env, store_at
from wxtoken import TokenManager
from wxtoken._local import SettingError, Settings, redact_store
from wxtoken.errors import KeySourceError, NoTokens, StorageError
from wxtoken.profile import Profile
from wxtoken.store.postgres import PostgresRecords
from wxtoken.store.sealed import SealedStore
from wxtoken.token import Token

pytest_plugins = ["tests.pg_fixtures"]

NOW = time.time()


def pg_store(tmp_path: Path, url: str, **env: str) -> SealedStore:
    full = {"WXTOKEN_KEY_FILE": str(tmp_path / "k" / "key"), "WXTOKEN_STORE": url}
    full.update(env)
    return store_at(tmp_path / "home", full)


def seed(store: SealedStore, name: str = "a") -> Token:
    store.save_profile(
        Profile(name, "Cid", "http://127.0.0.1:1/cb", ("spark:kms",), "http://127.0.0.1:9"),
        "CS-secret-" + name,
        replace=False,
    )
    tok = Token(f"AT-{name}", NOW + 1000, f"RT-{name}", NOW + 9000, ("spark:kms",), NOW)
    TokenManager(name, store=store).adopt(tok, identify=False)
    return tok


def test_round_trip_is_sealed_and_readable_by_another_host(tmp_path: Path, pg_url: str) -> None:
    store = pg_store(tmp_path, pg_url)
    assert isinstance(store.records, PostgresRecords)
    tok = seed(store)
    # "Another host": its own home, the same key file and the same database.
    other = store_at(tmp_path / "host2", {"WXTOKEN_KEY_FILE": str(tmp_path / "k" / "key"),
                                          "WXTOKEN_STORE": pg_url})  # fmt: skip
    loaded = other.load_token("a")
    assert loaded is not None and loaded[1].access_token == tok.access_token
    assert other.client_secret("a") == "CS-secret-a"
    # A database administrator sees only sealed bytes.
    with psycopg.connect(pg_url) as conn:
        raw = conn.execute("SELECT access_token, refresh_token FROM tokens").fetchone()
        secret = conn.execute("SELECT client_secret FROM profiles").fetchone()
    assert raw is not None and secret is not None
    for blob in (*raw, *secret):
        assert b"AT-a" not in blob and b"RT-a" not in blob and b"CS-secret" not in blob
    kinds = [e.kind for e in reversed(other.events("a"))]
    assert kinds == ["profile_added", "adopted"]
    rec = other.token_record("a")
    assert rec is not None
    other.put_record(replace(rec, status="login_required"), event="login_required", detail={})
    assert store.all_token_records()["a"].status == "login_required"
    store.remove_profile("a")
    assert other.token_record("a") is None and other.list_profiles() == []


def test_reading_an_empty_database_creates_nothing(tmp_path: Path, pg_url: str) -> None:
    store = pg_store(tmp_path, pg_url)
    assert not store.records.exists() and store.list_profiles() == []
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT to_regclass('meta')").fetchone()
    assert row == (None,)
    with pytest.raises(NoTokens):
        store.client_secret("a")


def test_a_newer_schema_is_refused_untouched(tmp_path: Path, pg_url: str) -> None:
    seed(pg_store(tmp_path, pg_url))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        before = conn.execute("SELECT count(*) FROM events").fetchone()
    store = pg_store(tmp_path, pg_url)
    with pytest.raises(StorageError) as err:
        store.list_profiles()
    assert "at schema 99, written by a newer wxtoken" in err.value.message
    assert "pip install -U 'wxtoken[postgres]'" in (err.value.fix or "")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == before


def test_an_older_schema_is_upgraded_by_its_migrations(tmp_path: Path, pg_url: str) -> None:
    from wxtoken.store import pg_schema

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in pg_schema.statements(1):
            conn.execute(statement)  # a store as release 0.1.0 would have made it
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('store_id', 'old')")
    store = pg_store(tmp_path, pg_url)
    assert store.records.exists()
    assert store.records.meta()["schema_version"] == "3"
    assert store.events(kinds=("schema_upgraded",))[0].detail == {"from": 1, "to": 3}


def test_the_keyring_cannot_key_a_shared_store(tmp_path: Path, pg_url: str) -> None:
    store = store_at(tmp_path / "h", {"WXTOKEN_STORE": pg_url, "WXTOKEN_KEY_SOURCE": "keyring"})
    with pytest.raises(KeySourceError) as err:
        store.unlock(create=True)
    assert "WXTOKEN_KEY_FILE" in (err.value.fix or "")


def test_store_urls_are_shown_without_their_password(tmp_path: Path) -> None:
    url = "postgresql://alice:S3cr3t-pw@db.example:5432/wx?sslmode=require&password=S3cr3t-pw"
    shown = redact_store(url)
    assert "S3cr3t" not in shown and shown.startswith("postgresql://alice@db.example:5432/wx")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'store = "{url}"\n')
    with pytest.raises(SettingError) as err:
        Settings({"WXTOKEN_HOME": str(home)})
    assert "S3cr3t" not in err.value.message + err.value.fix
    (home / "config.toml").write_text('store = "postgresql://alice@db.example/wx"\n')
    assert Settings({"WXTOKEN_HOME": str(home)}).store_url == "postgresql://alice@db.example/wx"
    with pytest.raises(SettingError):
        Settings({"WXTOKEN_STORE": "mysql://x"})


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    env = dict(base_env(tmp_path), WXTOKEN_STORE="postgresql://u:Pw-CANARY-91@127.0.0.1:1/db")
    proc = subprocess.run([WXTOKEN, "status"], env=env, capture_output=True, text=True)
    assert proc.returncode == 6, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "127.0.0.1:1/db" in lines[0]
    assert "Pw-CANARY" not in proc.stderr + proc.stdout


def test_without_the_extra_choosing_postgresql_is_exit_2(tmp_path: Path) -> None:
    # A psycopg that cannot be imported, as in an install without `wxtoken[postgres]`.
    fake = tmp_path / "site"
    (fake / "psycopg").mkdir(parents=True)
    (fake / "psycopg" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = dict(base_env(tmp_path), WXTOKEN_STORE="postgresql://u@127.0.0.1/db")
    env["PYTHONPATH"] = str(fake) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([WXTOKEN, "status"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "pip install 'wxtoken[postgres]'" in proc.stderr and "Traceback" not in proc.stderr
    assert sys.executable  # the same interpreter runs the CLI
