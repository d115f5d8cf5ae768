"""The store's key on a first run and at the prompt, as a tired admin meets them on a terminal.

Run under a real pseudo-terminal: wxtoken sees a terminal on stdin and asks through /dev/tty,
exactly as when a person types. Without a usable keyring a terminal gets a passphrase prompt
that says what the passphrase is for; an existing passphrase store forgives typing mistakes;
and no fix line ever suggests putting a passphrase on a command line.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import sqlite3
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import (
    HELPERS,
    WXTOKEN,
    Emulator,
    Wx,
    assert_no_secret,
    canary,
    profile_add_args,
    store_at,
)
from tests.e2e.test_signin_browser import recording_browser
from wxtoken.errors import CorruptStore

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
PASSPHRASE_PROMPT = r"[Pp]assphrase[^\n]*: ?$"
NEW_PASSPHRASE_PROMPT = r"New store passphrase[^\n]*: ?$"
SECRET_PROMPT = r"Client secret[^\n]*: ?$"


class Terminal:
    """One command on a real pseudo-terminal, read and typed into like a person would."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal is its controlling tty and stdio
            try:
                os.execve(argv[0], argv, env)  # noqa: S606 - our own test command
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.transcript = ""
        self._pos = 0
        self._eof = False

    def _read(self, until: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, until - time.monotonic()))
        if not ready:
            return
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the command closed the terminal (it exited)
            data = b""
        if not data:
            self._eof = True
        self.transcript += data.decode("utf-8", "replace").replace("\r\n", "\n")

    def expect(self, *patterns: str, timeout: float = 60) -> str:
        """Wait for the first of `patterns` (multi-line regexes) after what was matched so far;
        return the pattern that matched."""
        until = time.monotonic() + timeout
        while True:
            found = [
                (m.end(), p)
                for p in patterns
                if (m := re.compile(p, re.M).search(self.transcript, self._pos))
            ]
            if found:
                end, pattern = min(found)
                self._pos = end
                return pattern
            if self._eof or time.monotonic() > until:
                raise AssertionError(f"none of {patterns} in:\n{self.transcript[-2000:]}")
            self._read(until)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def finish(self, timeout: float = 60) -> int:
        until = time.monotonic() + timeout
        while not self._eof and time.monotonic() < until:
            self._read(until)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


@pytest.fixture(autouse=True)
def no_key_source(wx: Wx) -> None:
    """No key source set and no keyring, as on a fresh server (tests add what they need)."""
    wx.env.pop("WXTOKEN_KEY_FILE", None)
    wx.env.update(NO_KEYRING)


def assert_no_passphrase_on_a_command_line(text: str) -> None:
    assert not re.search(r"WXTOKEN_PASSPHRASE=\S", text), "a fix puts a passphrase in argv"


def test_first_run_without_keyring_offers_a_passphrase(wx: Wx, emu: Emulator) -> None:
    passphrase = canary("PASS")
    term = Terminal([WXTOKEN, *profile_add_args(emu)], wx.env)
    answered: list[str] = []
    while len(answered) < 3:
        prompt = term.expect(SECRET_PROMPT, NEW_PASSPHRASE_PROMPT, r"Repeat[^\n]*: ?$")
        answered.append(prompt)
        term.type(emu.client_secret if prompt == SECRET_PROMPT else passphrase)
    assert term.finish() == 0, term.transcript
    said = " ".join(term.transcript.split())
    assert "not your Webex password" in said and "encrypts" in said
    assert "keyring" in said and "unlock" not in said  # there is nothing here to unlock
    assert_no_secret([term.transcript], [passphrase, emu.client_secret])
    status = wx("status", "-p", "rec").stdout
    assert "passphrase" in status
    # The passphrase chosen at the prompt opens the store.
    assert wx("profile", "show", "rec", env={"WXTOKEN_PASSPHRASE": passphrase}).returncode == 0


def test_first_run_asks_the_passphrase_before_the_client_secret(wx: Wx, emu: Emulator) -> None:
    term = Terminal([WXTOKEN, *profile_add_args(emu)], wx.env)
    first = term.expect(SECRET_PROMPT, NEW_PASSPHRASE_PROMPT)
    os.kill(term.pid, 9)
    term.finish()
    assert first == NEW_PASSPHRASE_PROMPT, "the secret would be typed for nothing"


@pytest.fixture
def passphrase_store(wx: Wx, emu: Emulator) -> str:
    passphrase = canary("PASS")
    add = [*profile_add_args(emu), "--client-secret-stdin"]
    wx(*add, input=emu.client_secret + "\n", env={"WXTOKEN_PASSPHRASE": passphrase}, check=0)
    return passphrase


def login_on_a_terminal(wx: Wx, tmp_path: Path) -> tuple[Terminal, Path]:
    """`wxtoken login` on a terminal; the path exists once a browser was started."""
    started = tmp_path / "browser-env.jsonl"
    browser = recording_browser(tmp_path, started)
    env = dict(wx.env, BROWSER=f"{sys.executable} {browser} %s")
    return Terminal([WXTOKEN, "login", "-p", "rec"], env), started


def test_existing_store_forgives_three_wrong_passphrases(
    wx: Wx, passphrase_store: str, tmp_path: Path
) -> None:
    term, started = login_on_a_terminal(wx, tmp_path)
    term.expect(PASSPHRASE_PROMPT)
    for left in (3, 2, 1):
        term.type(f"wrong-{left}")
        term.expect(f"does not open this store \\({left} more tr")
        term.expect(PASSPHRASE_PROMPT)
        assert not started.exists(), "the browser waits for the key"
    term.type(passphrase_store)
    term.expect("Signed in as")
    assert term.finish() == 0, term.transcript
    said = " ".join(term.transcript.split())
    assert "not your Webex password" in said
    assert said.index("passphrase") < said.index("/v1/authorize?"), "key first, then the URL"
    assert_no_secret([term.transcript], [passphrase_store])


def test_too_many_wrong_passphrases_end_before_the_browser(
    wx: Wx, passphrase_store: str, tmp_path: Path
) -> None:
    term, started = login_on_a_terminal(wx, tmp_path)
    for n in range(4):
        term.expect(PASSPHRASE_PROMPT)
        term.type(f"wrong-{n}")
    assert term.finish() == 6, term.transcript
    last = term.transcript.strip().splitlines()[-1]
    assert "passphrase does not open this store" in last and "read -rs" in last
    assert_no_passphrase_on_a_command_line(term.transcript)
    assert not started.exists()
    assert "/v1/authorize?" not in term.transcript


def test_fix_lines_keep_passphrases_out_of_shell_history(
    wx: Wx, emu: Emulator, passphrase_store: str, tmp_path: Path
) -> None:
    """Without a terminal, every key-source failure says how to set a passphrase safely."""
    texts = []
    # An existing passphrase store, no passphrase given, no terminal to ask on.
    quick = ("--no-browser", "--timeout", "5")
    proc = wx("login", "-p", "rec", *quick)
    assert proc.returncode == 6 and "no terminal" in proc.stderr and "read -rs" in proc.stderr
    texts.append(proc.stderr)
    # A wrong passphrase in the environment.
    proc = wx("login", "-p", "rec", *quick, env={"WXTOKEN_PASSPHRASE": "nope"})
    assert proc.returncode == 6 and "read -rs" in proc.stderr
    texts.append(proc.stderr)
    # A new store on a server with no keyring and no terminal.
    fresh = {"WXTOKEN_HOME": str(tmp_path / "fresh")}
    proc = wx(*profile_add_args(emu), "--client-secret-stdin", input="s\n", env=fresh)
    assert proc.returncode == 6 and "read -rs WXTOKEN_PASSPHRASE" in proc.stderr
    assert "systemd" in proc.stderr and "unlock" not in proc.stderr
    texts.append(proc.stderr)
    for text in texts:
        assert_no_passphrase_on_a_command_line(text)


def test_keyring_store_on_a_machine_without_keyring(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    """The store's key lives in a keyring this machine does not have: nothing to unlock here."""
    keyring_env = {
        "PYTHONPATH": str(HELPERS),
        "PYTHON_KEYRING_BACKEND": "fake_keyring.FileKeyring",
        "WXTOKEN_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }
    wx(*profile_add_args(emu), "--client-secret-stdin", input="s\n", env=keyring_env, check=0)
    proc = wx("login", "-p", "rec")
    assert proc.returncode == 6
    assert "unlock" not in proc.stderr and "WXTOKEN_HOME" in proc.stderr
    assert_no_passphrase_on_a_command_line(proc.stderr)


def test_tampered_kdf_parameters_are_refused_not_run(tmp_path: Path) -> None:
    """The scrypt parameters are read from the store file, which needs no key to edit: a
    tampered N must not make wxtoken allocate terabytes before the passphrase is checked."""
    env = {"WXTOKEN_PASSPHRASE": "correct horse"}
    store = store_at(tmp_path / "home", env)
    store.unlock(create=True)
    store.close()
    db = sqlite3.connect(tmp_path / "home" / "wxtoken.db")
    db.execute("UPDATE meta SET value = '1099511627776,8,1' WHERE key = 'kdf_params'")
    db.commit()
    db.close()
    with pytest.raises(CorruptStore, match="outside sane bounds"):
        store_at(tmp_path / "home", env).unlock()
