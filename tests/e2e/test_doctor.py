"""`wxtoken doctor` through the installed CLI: each check broken, then fixed, against the
emulator and a broken local setup; the exit code is the worst finding."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HELPERS, WXTOKEN, Emulator, Wx, free_port, self_signed_cert, wait_until


def doctor(
    wx: Wx, *args: str, env: dict[str, str] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    proc = wx("doctor", "--json", *args, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    assert data["exit_code"] == proc.returncode
    return proc.returncode, data["findings"]


def level(findings: list[dict[str, Any]], check: str, profile: str | None = None) -> str:
    [found] = [f for f in findings if f["check"] == check and f["profile"] == profile]
    return str(found["level"])


def finding(
    findings: list[dict[str, Any]], check: str, profile: str | None = None
) -> dict[str, Any]:
    [found] = [f for f in findings if f["check"] == check and f["profile"] == profile]
    return found


@pytest.fixture
def ready(logged_in: tuple[Wx, Emulator]) -> tuple[Wx, Emulator]:
    """A signed-in profile with the recorder's copy handed over: only the keeper is missing."""
    wx, _ = logged_in
    wx("export", check=0)
    return logged_in


def test_a_working_setup_reports_only_the_missing_keeper(ready: tuple[Wx, Emulator]) -> None:
    wx, _ = ready
    code, findings = doctor(wx)
    assert {f["check"]: f["level"] for f in findings if f["level"] != "ok"} == {"keeper": "warning"}
    assert code == 3
    for check in ("store", "key", "keyring", "proxy"):
        assert level(findings, check) == "ok"
    for check in ("grant", "webex", "clock", "authorize", "redirect_port"):
        assert level(findings, check, "rec") == "ok"
    text = wx("doctor").stdout
    assert "WARNING  keeper" in text and "fix: run `wxtoken keep --all`" in text


def test_store_permissions_then_fixed(ready: tuple[Wx, Emulator]) -> None:
    wx, _ = ready
    db = wx.home / "store" / "wxtoken.db"
    db.chmod(0o644)
    code, findings = doctor(wx)
    store = finding(findings, "store")
    assert (code, store["level"]) == (6, "problem")
    assert store["fix"] == f"chmod 600 {db}"
    db.chmod(0o600)
    assert level(doctor(wx)[1], "store") == "ok"


def test_wrong_key_then_fixed(ready: tuple[Wx, Emulator], tmp_path: Path) -> None:
    wx, _ = ready
    wrong = tmp_path / "other.key"
    wrong.write_bytes(b"\x01" * 32)
    wrong.chmod(0o600)
    code, findings = doctor(wx, env={"WXTOKEN_KEY_FILE": str(wrong)})
    assert (code, level(findings, "key")) == (6, "problem")
    assert level(doctor(wx)[1], "key") == "ok"


def test_a_keyring_keyed_store_needs_the_keyring(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    keyring = {
        "PYTHONPATH": str(HELPERS),
        "PYTHON_KEYRING_BACKEND": "fake_keyring.FileKeyring",
        "WXTOKEN_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }
    wx.env = {k: v for k, v in wx.env.items() if k != "WXTOKEN_KEY_FILE"}
    wx(
        "profile", "add", "rec", "--client-id", emu.client_id, "--redirect-uri", emu.redirect_uri,
        "--preset", "verint-calling", "--base-url", emu.base_url, "--client-secret-stdin",
        input=emu.client_secret + "\n", env=keyring, check=0,
    )  # fmt: skip
    broken = dict(keyring, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    code, findings = doctor(wx, "--offline", env=broken)
    assert code == 6
    assert level(findings, "keyring") == "problem" and level(findings, "key") == "problem"
    _, findings = doctor(wx, "--offline", env=keyring)
    assert level(findings, "keyring") == "ok" and level(findings, "key") == "ok"


def test_keeper_missing_then_running(ready: tuple[Wx, Emulator]) -> None:
    wx, _ = ready
    assert level(doctor(wx)[1], "keeper") == "warning"
    keeper = subprocess.Popen(
        [WXTOKEN, "keep", "--metrics-listen", "127.0.0.1:0"],
        env=wx.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until((wx.home / "store" / "keeper.sock").exists, timeout=20)
        code, findings = doctor(wx)
        keeper_finding = finding(findings, "keeper")
        assert (code, keeper_finding["level"]) == (0, "ok")
        assert "metrics http://127.0.0.1:" in keeper_finding["detail"]
    finally:
        keeper.terminate()
        keeper.communicate(timeout=30)


def test_clock_skew_then_in_step(ready: tuple[Wx, Emulator]) -> None:
    wx, emu = ready
    emu.advance(600)  # Webex's Date is ten minutes ahead of this machine
    code, findings = doctor(wx)
    clock = finding(findings, "clock", "rec")
    assert clock["level"] == "warning" and "behind Webex's" in clock["detail"]
    assert code == 3
    emu.advance(-600)
    assert level(doctor(wx)[1], "clock", "rec") == "ok"


def test_unreachable_webex_then_reachable(ready: tuple[Wx, Emulator]) -> None:
    wx, emu = ready
    wx("profile", "set", "rec", "--base-url", f"http://127.0.0.1:{free_port()}", check=0)
    code, findings = doctor(wx)
    webex = finding(findings, "webex", "rec")
    assert webex["level"] == "problem" and "cannot reach" in webex["detail"]
    assert code in (4, 5)  # the base URL's change also dropped the tokens it was issued by
    assert "authorize" not in {f["check"] for f in findings}
    wx("profile", "set", "rec", "--base-url", emu.base_url, check=0)
    assert level(doctor(wx)[1], "webex", "rec") == "ok"
    assert doctor(wx, "--offline")[1] and "webex" not in {
        f["check"] for f in doctor(wx, "--offline")[1]
    }


@pytest.fixture
def tls_peer(tmp_path: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 with a certificate nobody here trusts."""
    cert, key = self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield port
    stop.set()
    t.join(5)
    server.close()


def test_an_untrusted_certificate_is_named(ready: tuple[Wx, Emulator], tls_peer: int) -> None:
    wx, emu = ready
    wx("profile", "set", "rec", "--base-url", f"https://127.0.0.1:{tls_peer}", check=0)
    webex = finding(doctor(wx)[1], "webex", "rec")
    assert webex["level"] == "problem" and "TLS certificate is not valid" in webex["detail"]
    wx("profile", "set", "rec", "--base-url", emu.base_url, check=0)
    assert level(doctor(wx)[1], "webex", "rec") == "ok"


def test_unregistered_redirect_uri_then_registered(ready: tuple[Wx, Emulator]) -> None:
    wx, emu = ready
    wx("profile", "set", "rec", "--redirect-uri", "http://127.0.0.1:1/elsewhere", check=0)
    authorize = finding(doctor(wx)[1], "authorize", "rec")
    assert authorize["level"] == "problem" and "redirect" in authorize["detail"].lower()
    assert "wxtoken profile set rec --redirect-uri" in authorize["fix"]
    wx("profile", "set", "rec", "--redirect-uri", emu.redirect_uri, check=0)
    assert level(doctor(wx)[1], "authorize", "rec") == "ok"


def test_busy_redirect_port_then_free(ready: tuple[Wx, Emulator]) -> None:
    wx, emu = ready
    port = int(emu.redirect_uri.split(":")[2].split("/")[0])
    with socket.create_server(("127.0.0.1", port)):
        port_finding = finding(doctor(wx)[1], "redirect_port", "rec")
        assert port_finding["level"] == "warning" and str(port) in port_finding["detail"]
    assert level(doctor(wx)[1], "redirect_port", "rec") == "ok"


def test_dead_grant_then_signed_in_again(ready: tuple[Wx, Emulator]) -> None:
    wx, emu = ready
    token = json.loads(wx("export", "--format", "json", check=0).stdout)["refresh_token"]
    emu.control("POST", "revoke", {"token": token})
    wx("refresh", "--force", check=4)
    code, findings = doctor(wx)
    grant = finding(findings, "grant", "rec")
    assert (code, grant["level"]) == (4, "problem")
    assert "wxtoken login -p rec" in grant["fix"]
    assert wx.login().returncode == 0
    wx("export", check=0)
    assert level(doctor(wx)[1], "grant", "rec") == "ok"


def test_stale_recorder_copy_is_a_warning(wx: Wx, emulator_factory: Any) -> None:
    emu = emulator_factory("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    wx("export", check=0)
    wx("refresh", "--force", check=0)  # Webex rotates: the recorder's copy is stale
    grant = finding(doctor(wx)[1], "grant", "rec")
    assert grant["level"] == "warning" and "recorder copy stale" in grant["detail"]
    assert grant["fix"] == "hand the current token to the recorder: wxtoken export -p rec"
    wx("export", check=0)
    assert level(doctor(wx)[1], "grant", "rec") == "ok"


def test_proxy_credentials_are_not_shown(ready: tuple[Wx, Emulator]) -> None:
    wx, _ = ready
    env = {"HTTPS_PROXY": "http://alice:s3cret-proxy-pw@127.0.0.1:3128", "NO_PROXY": "127.0.0.1"}
    proxy = finding(doctor(wx, env=env)[1], "proxy")
    assert "HTTPS_PROXY=http://127.0.0.1:3128 (with credentials)" in proxy["detail"]
    assert "s3cret" not in json.dumps(doctor(wx, env=env)[1]) and "alice" not in proxy["detail"]


def test_a_store_from_a_newer_wxtoken_then_this_ones(ready: tuple[Wx, Emulator]) -> None:
    import sqlite3

    wx, _ = ready
    db = wx.home / "store" / "wxtoken.db"
    with sqlite3.connect(db) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("PRAGMA user_version = 99")
    code, findings = doctor(wx)
    store = finding(findings, "store")
    assert (code, store["level"]) == (6, "problem") and "newer wxtoken" in store["detail"]
    # Nothing else is read from a store this wxtoken does not understand.
    assert {f["check"] for f in findings} == {"store", "keyring", "keeper", "proxy", "trust"}
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
    assert level(doctor(wx)[1], "store") == "ok"
