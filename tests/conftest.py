"""Shared fixtures: a real emulator subprocess on loopback, and the installed `wxtoken` CLI.

Nothing of ours is mocked: the emulator is the other side of the wire, SQLite is real, and the
CLI runs as a subprocess exactly as a user runs it. Canary secrets let tests prove that no
secret reaches output, errors or argv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wxtoken._local import Settings
from wxtoken.store import open_store
from wxtoken.store.sealed import SealedStore

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WXTOKEN = str(BIN / "wxtoken") if (BIN / "wxtoken").exists() else shutil.which("wxtoken") or ""
BROWSER_SCRIPT = ROOT / "scripts" / "browser.py"
HELPERS = ROOT / "tests" / "helpers"


def store_at(home: Path, env: Mapping[str, str], **kw: Any) -> SealedStore:
    """The embedded store in `home` with the key settings of `env` (WXTOKEN_HOME overridden)."""
    store = open_store(Settings(dict(env, WXTOKEN_HOME=str(home))), **kw)
    assert isinstance(store, SealedStore)
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Emulator:
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    redirect_uri: str
    # What it wrote on stderr (its request log), read as it comes so a full pipe never
    # stops the emulator.
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.info["client_secret"])

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url}/_emulator/{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def fault(self, kind: str, endpoint: str = "access_token", **kw: Any) -> None:
        self.control("POST", "faults", dict(kw, kind=kind, endpoint=endpoint))

    def policy(self, **kw: Any) -> dict[str, Any]:
        return dict(self.control("POST", "policy", kw))

    def ledger(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.control("GET", f"ledger?since={since}")["entries"])

    def refreshes(self, since: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.ledger(since) if e.get("grant_type") == "refresh_token"]

    def mark(self) -> int:
        return int(self.control("GET", "ledger?since=999999999")["total"])

    def advance(self, seconds: float) -> None:
        self.control("POST", "clock", {"advance": seconds})

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


def start_emulator(*args: str, redirect_port: int | None = None) -> Emulator:
    port = redirect_port or free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    cmd = [
        WXTOKEN,
        "emulator",
        "--port",
        "0",
        "--json",
        "--control",
        # Exactly these two, so no test signs in through a redirect URI it did not choose.
        "--replace-redirect-uris",
        "--redirect-uri",
        redirect,
        "--redirect-uri",
        "https://oauth.pstmn.io/v1/callback",
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lines.extend, args=(proc.stderr,), daemon=True)
    reader.start()
    line = proc.stdout.readline()
    if not line:
        reader.join(10)
        raise RuntimeError(f"emulator did not start: {''.join(lines)}")
    return Emulator(proc, json.loads(line), redirect, lines)


@pytest.fixture
def emulator_factory() -> Iterator[Any]:
    started: list[Emulator] = []

    def make(*args: str, redirect_port: int | None = None) -> Emulator:
        emu = start_emulator(*args, redirect_port=redirect_port)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(emulator_factory: Any) -> Emulator:
    return emulator_factory()


def profile_add_args(emu: Emulator, name: str = "rec") -> list[str]:
    """`profile add` for the emulator's integration, without any way of giving the secret."""
    return [
        "profile",
        "add",
        name,
        "--client-id",
        emu.client_id,
        "--redirect-uri",
        emu.redirect_uri,
        "--preset",
        "verint-calling",
        "--base-url",
        emu.base_url,
    ]


@dataclass
class Wx:
    """Runs the installed `wxtoken` with a private home, as a user would."""

    home: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
        check: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(self.env, **(env or {}))
        proc = subprocess.run(
            [WXTOKEN, *args],
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        self.outputs += [proc.stdout, proc.stderr]
        if check is not None:
            assert proc.returncode == check, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def add_profile(
        self,
        emu: Emulator,
        name: str = "rec",
        *extra: str,
        secret: str | None = None,
        redirect_uri: str | None = None,
        scopes: str | None = None,
    ) -> None:
        """`profile add` for the emulator's integration, secret on stdin (as users are told)."""
        scope_args = ["--scopes", scopes] if scopes else ["--preset", "verint-calling"]
        self(
            "profile",
            "add",
            name,
            "--client-id",
            emu.client_id,
            "--redirect-uri",
            redirect_uri or emu.redirect_uri,
            *scope_args,
            "--base-url",
            emu.base_url,
            "--client-secret-stdin",
            *extra,
            input=(secret or emu.client_secret) + "\n",
            check=0,
        )

    def login(
        self, name: str = "rec", decision: str = "approve", *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self(
            "login",
            "-p",
            name,
            *extra,
            env={
                "BROWSER": f"{sys.executable} {BROWSER_SCRIPT} %s",
                "WXTOKEN_BROWSER_DECISION": decision,
            },
            timeout=60,
        )


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXTOKEN_")}
    env.update(
        {
            "WXTOKEN_HOME": str(home / "store"),
            "WXTOKEN_KEY_FILE": str(home / "keys" / "store.key"),
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    env.pop("BROWSER", None)
    return env


@pytest.fixture
def wx(tmp_path: Path) -> Wx:
    return Wx(home=tmp_path, env=base_env(tmp_path))


@pytest.fixture
def logged_in(wx: Wx, emu: Emulator) -> tuple[Wx, Emulator]:
    wx.add_profile(emu)
    proc = wx.login()
    assert proc.returncode == 0, proc.stderr
    return wx, emu


def canary(kind: str) -> str:
    return f"{kind}-CANARY-{uuid.uuid4().hex}"


WEBEX_TOKEN_TAIL = re.compile(r"(.+)_[A-Za-z0-9]+_[0-9a-f]{8}-[0-9a-f-]{27}")


def assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    """The leak scanner: full values, and 12-character slices at a step of 4, so every
    fragment of 16 or more characters contains at least one of them."""
    import base64
    import urllib.parse

    for full in secrets:
        # A Webex token ends in `_<cluster>_<org UUID>`: public, shown by `status`. Scan the rest
        # (only of a value of that shape: a random code may hold underscores anywhere).
        webex = WEBEX_TOKEN_TAIL.fullmatch(full)
        secret = webex.group(1) if webex else full
        probes = {
            secret,
            urllib.parse.quote(secret),
            json.dumps(secret)[1:-1],
            base64.b64encode(secret.encode()).decode()[:16],
        }
        probes |= {secret[i : i + 12] for i in range(0, max(1, len(secret) - 11), 4)}
        for text in texts:
            for probe in probes:
                assert probe not in text, f"secret fragment {probe[:4]}… leaked"


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(pred: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:  # noqa: S110 - "not yet": connection refused, 503, ...
            pass
        time.sleep(interval)
    return False


# --- figures: tests that measure report "name = value" lines in the session summary ---------

FIGURES: list[str] = []


@pytest.fixture
def figure() -> Any:
    def report(text: str) -> None:
        FIGURES.append(text)
        print(text)

    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) and its key, PEM files: local TLS peers in tests."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
