"""The embedded store: encryption, key sources, permissions, tamper and failure handling.

Each failure must give the right error and leave the store byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import HELPERS, WXTOKEN, Emulator, Wx, base_env, profile_add_args, store_at
from wxtoken import TokenManager
from wxtoken.errors import (
    CorruptStore,
    KeySourceError,
    StorageError,
    TamperedData,
    UnsafePermissions,
    UsageError,
    WrongKey,
)
from wxtoken.profile import Profile
from wxtoken.store.sealed import SealedStore
from wxtoken.store.sqlite import SQLiteRecords
from wxtoken.token import Token

NOW = time.time()


def make_store(tmp_path: Path, **env: str) -> SealedStore:
    full = {"WXTOKEN_KEY_FILE": str(tmp_path / "k" / "key")}
    full.update(env)
    return store_at(tmp_path / "home", full)


def seed(store: SealedStore, name: str = "a", secret: str = "CS-secret") -> Token:
    store.save_profile(
        Profile(name, "Cid", "http://127.0.0.1:1/cb", ("spark:kms",), "http://127.0.0.1:9"),
        secret,
        replace=False,
    )
    tok = Token(f"AT-{name}", NOW + 1000, f"RT-{name}", NOW + 9000, ("spark:kms",), NOW)
    TokenManager(name, store=store).adopt(tok, identify=False)
    return tok


def db_digest(store: SealedStore) -> str:
    store.close()
    h = hashlib.sha256()
    for suffix in ("", "-wal"):
        p = Path(str(Path(store.location)) + suffix)
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_round_trip_and_private_files(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    tok = seed(store)
    record, loaded = store.load_token("a")  # type: ignore[misc]
    assert loaded == tok and store.client_secret("a") == "CS-secret"
    assert record.generation == 1 and record.refresh_fp and record.refresh_fp != "RT-a"
    home = tmp_path / "home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (
        stat.S_IMODE((home / "locks").stat().st_mode) == 0o700
        if (home / "locks").exists()
        else True
    )
    for p in home.iterdir():
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE((tmp_path / "k" / "key").stat().st_mode) == 0o600
    raw = b"".join(p.read_bytes() for p in home.iterdir() if p.is_file())
    for secret in (b"AT-a", b"RT-a", b"CS-secret"):
        assert secret not in raw, "plaintext at rest"
    assert "CS-secret" not in repr(store)


@pytest.mark.parametrize(
    ("column", "table"),
    [("access_token", "tokens"), ("refresh_token", "tokens"), ("client_secret", "profiles")],
)
def test_flipped_byte_is_tamper(tmp_path: Path, column: str, table: str) -> None:
    store = make_store(tmp_path)
    seed(store)
    store.close()
    db = sqlite3.connect(Path(store.location))
    key = "profile" if table == "tokens" else "name"
    blob = bytearray(db.execute(f"SELECT {column} FROM {table} WHERE {key}='a'").fetchone()[0])
    blob[20] ^= 0x01
    db.execute(f"UPDATE {table} SET {column}=? WHERE {key}='a'", (bytes(blob),))
    db.commit()
    db.close()
    before = db_digest(store)
    fresh = make_store(tmp_path)
    with pytest.raises(TamperedData):
        if table == "profiles":
            fresh.client_secret("a")
        else:
            fresh.load_token("a")
    assert db_digest(fresh) == before, "a failed decryption never rewrites anything"


def test_swapped_rows_and_edited_expiry_fail(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store, "a")
    seed(store, "b")
    store.close()
    db = sqlite3.connect(Path(store.location))
    a = db.execute("SELECT refresh_token FROM tokens WHERE profile='a'").fetchone()[0]
    b = db.execute("SELECT refresh_token FROM tokens WHERE profile='b'").fetchone()[0]
    db.execute("UPDATE tokens SET refresh_token=? WHERE profile='a'", (b,))
    db.execute("UPDATE tokens SET refresh_token=? WHERE profile='b'", (a,))
    # An attacker extending the access expiry to stop refreshes is caught too.
    db.execute("UPDATE tokens SET access_expires_at = access_expires_at + 1 WHERE profile='b'")
    db.commit()
    db.close()
    fresh = make_store(tmp_path)
    for name in ("a", "b"):
        with pytest.raises(TamperedData):
            fresh.load_token(name)


def test_wrong_keyfile_and_source_mismatch(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store)
    with pytest.raises(KeySourceError, match="does not exist"):
        make_store(tmp_path, WXTOKEN_KEY_FILE=str(tmp_path / "none" / "key")).load_token("a")
    seed(make_store(tmp_path / "o", WXTOKEN_KEY_FILE=str(tmp_path / "other" / "key")))
    other = make_store(tmp_path, WXTOKEN_KEY_FILE=str(tmp_path / "other" / "key"))
    with pytest.raises(WrongKey):
        other.load_token("a")
    with pytest.raises(KeySourceError, match="WXTOKEN_KEY_FILE"):
        store_at(tmp_path / "home", {}).load_token("a")
    with pytest.raises(KeySourceError):
        store_at(tmp_path / "home", {"WXTOKEN_PASSPHRASE": "p"}).load_token("a")
    with pytest.raises(UsageError):
        make_store(tmp_path, WXTOKEN_PASSPHRASE="p").load_token("a")
    # Metadata stays readable without the key (status works for monitoring).
    assert store_at(tmp_path / "home", {}).token_record("a") is not None


def test_passphrase_source(tmp_path: Path) -> None:
    env = {"WXTOKEN_PASSPHRASE": "correct horse battery staple"}
    store = store_at(tmp_path / "home", env)
    seed(store)
    assert store.key_source() == "passphrase"
    assert store_at(tmp_path / "home", env).client_secret("a") == "CS-secret"
    with pytest.raises(WrongKey, match="WXTOKEN_PASSPHRASE"):
        store_at(tmp_path / "home", {"WXTOKEN_PASSPHRASE": "wrong"}).load_token("a")
    with pytest.raises(KeySourceError, match="no terminal"):
        store_at(tmp_path / "home", {}).load_token("a")
    meta = dict(
        sqlite3.connect(Path(store.location)).execute("SELECT key, value FROM meta").fetchall()
    )
    assert meta["kdf"] == "scrypt" and meta["kdf_params"] == "131072,8,1"


def test_permissions_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store)
    store.close()
    Path(store.location).chmod(0o644)
    with pytest.raises(UnsafePermissions, match="chmod 600"):
        make_store(tmp_path).load_token("a")
    Path(store.location).chmod(0o600)
    keyfile = tmp_path / "k" / "key"
    keyfile.chmod(0o640)
    with pytest.raises(UnsafePermissions):
        make_store(tmp_path).load_token("a")
    keyfile.chmod(0o600)
    link = tmp_path / "linked"
    link.symlink_to(tmp_path / "home")
    with pytest.raises(UnsafePermissions, match="symbolic link"):
        store_at(link, {"WXTOKEN_KEY_FILE": str(keyfile)}).load_token("a")


def test_corrupt_database(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store)
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(Path(store.location)) + suffix).unlink(missing_ok=True)
    data = bytearray(Path(store.location).read_bytes())
    data[100:4000] = os.urandom(3900)
    Path(store.location).write_bytes(bytes(data))
    with pytest.raises((CorruptStore, StorageError)):
        make_store(tmp_path).load_token("a")


def test_unwritable_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores directory modes; make the file itself read-only via an immutable copy
        store = make_store(tmp_path)
        seed(store)
        store.close()
        before = db_digest(store)
        ro = store_at(tmp_path / "home", {"WXTOKEN_KEY_FILE": str(tmp_path / "k/key")})
        assert isinstance(ro.records, SQLiteRecords)
        conn = ro.records._conn()
        conn.execute("PRAGMA query_only = ON")
        with pytest.raises(StorageError):
            ro.append_event("a", "x", {})
        ro.close()
        assert db_digest(ro) == before
    else:  # pragma: no cover - CI runs as root here, developers may not
        (tmp_path / "home").mkdir(mode=0o500)
        with pytest.raises(StorageError):
            seed(make_store(tmp_path))


def test_full_disk_changes_nothing(logged_in: tuple[Wx, Emulator]) -> None:
    """Simulated full disk: a file-size limit makes SQLite's writes fail with EFBIG."""
    wx, _ = logged_in
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    wx("token", check=0)
    before = (db.read_bytes(), wx("export", check=0).stdout)
    size = sum(p.stat().st_size for p in db.parent.iterdir() if p.is_file())

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 4, size // 4))

    # Fill the WAL with writes until the limit bites: each refresh writes a transaction.
    proc = None
    for _ in range(30):
        proc = subprocess.run(
            [WXTOKEN, "refresh", "--force"],
            env=wx.env,
            capture_output=True,
            text=True,
            preexec_fn=limit,
            timeout=60,
        )
        if proc.returncode != 0:
            break
    assert proc is not None and proc.returncode == 6, proc.stderr if proc else ""
    assert "disk" in proc.stderr and "Traceback" not in proc.stderr
    # The store still opens and holds a complete, working token pair.
    wx("refresh", "--force", check=0)
    assert wx("export", check=0).stdout == before[1]


def test_keyring_source_via_cli(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env.pop("WXTOKEN_KEY_FILE")
    env.update(
        {
            "PYTHONPATH": str(HELPERS),
            "PYTHON_KEYRING_BACKEND": "fake_keyring.FileKeyring",
            "WXTOKEN_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        }
    )
    wx.env = env
    wx.add_profile(emu)
    assert (
        "OS keyring"
        in wx(
            "profile",
            "add",
            "x",
            "--client-id",
            "Cx",
            "--redirect-uri",
            "http://127.0.0.1:1/cb",
            "--scopes",
            "spark:kms",
            "--client-secret-stdin",
            input="s\n",
            check=0,
        ).stderr
    )
    assert wx.login().returncode == 0
    assert "OS keyring" in wx("status", "-p", "rec", check=0).stdout
    wx("token", "-p", "rec", check=0)
    # A hanging keyring costs the timeout, then a clear exit 6.
    started = time.monotonic()
    proc = wx(
        "token",
        "-p",
        "rec",
        env={
            "PYTHON_KEYRING_BACKEND": "fake_keyring.HangingKeyring",
            "WXTOKEN_KEYRING_TIMEOUT": "1",
        },
    )
    assert proc.returncode == 6 and "did not answer within 1 s" in proc.stderr
    assert time.monotonic() - started < 15
    # No keyring at all: exit 6 naming the alternatives; never a plaintext fallback.
    proc = wx("token", "-p", "rec", env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert proc.returncode == 6 and "WXTOKEN_PASSPHRASE" in proc.stderr


def test_new_store_without_keyring_fails_closed(wx: Wx, emu: Emulator) -> None:
    wx.env.pop("WXTOKEN_KEY_FILE")
    proc = wx(
        *profile_add_args(emu),
        "--client-secret-stdin",
        input="s\n",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )
    assert proc.returncode == 6 and "WXTOKEN_KEY_FILE" in proc.stderr
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    if db.exists():
        rows = sqlite3.connect(db).execute("SELECT count(*) FROM profiles").fetchone()[0]
        assert rows == 0, "nothing half-written"


def test_event_log_is_append_only_history(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    seed(store)
    store.append_event("a", "export", {"format": "json"})
    rec = store.token_record("a")
    assert rec is not None
    store.put_record(
        replace(rec, status="login_required"), event="login_required", detail={"reason": "t"}
    )
    kinds = [e.kind for e in reversed(store.events("a"))]
    assert kinds == ["profile_added", "adopted", "export", "login_required"]
    store.remove_profile("a")
    assert store.events("a")[0].kind == "profile_removed"
    assert sys.version_info >= (3, 11)
