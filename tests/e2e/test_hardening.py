"""Defects a red team reproduced against the real CLI, each pinned by the test that found it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import HELPERS, WXTOKEN, Emulator, Wx, base_env, profile_add_args

# --- core dumps ----------------------------------------------------------------------------------


def test_forbid_core_dumps_in_a_process() -> None:
    code = (
        "import ctypes, resource\n"
        "from wxtoken._local import forbid_core_dumps\n"
        "forbid_core_dumps()\n"
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE),"
        " open('/proc/self/coredump_filter').read().strip())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "(0,", "0)", "00000000"]


def test_the_keeper_process_cannot_dump_core(logged_in: tuple[Wx, Emulator]) -> None:
    wx, _ = logged_in
    proc = subprocess.Popen(
        [WXTOKEN, "keep", "--metrics-listen", "127.0.0.1:0"],
        env=wx.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # listening: past start-up
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        [line] = [x for x in limits.splitlines() if x.startswith("Max core file size")]
        assert line.split()[4:6] == ["0", "0"], line
        assert Path(f"/proc/{proc.pid}/coredump_filter").read_text().strip() == "00000000"
    finally:
        proc.terminate()
        proc.wait(30)


# --- deleted secrets ---------------------------------------------------------------------------


def test_logout_leaves_no_sealed_token_on_disk(logged_in: tuple[Wx, Emulator]) -> None:
    wx, _ = logged_in
    home = Path(wx.env["WXTOKEN_HOME"])
    with sqlite3.connect(home / "wxtoken.db") as db:
        sealed = [bytes(r[0]) for r in db.execute("SELECT refresh_token FROM tokens")]
        sealed += [bytes(r[0]) for r in db.execute("SELECT access_token FROM tokens")]
    wx("refresh", "--force", check=0)  # more copies in the WAL and freed pages
    wx("logout", check=0)
    raw = b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith("wxtoken.db"))
    for blob in sealed:
        assert blob[13:45] not in raw, "a sealed token survived its deletion"


# --- identity -------------------------------------------------------------------------------------


def test_a_new_sign_in_never_inherits_the_previous_person(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    first = json.loads(wx("status", "--json", check=0).stdout)[0]
    assert first["user"] == "admin@example.com"
    emu.fault("status", endpoint="people_me", status=503, count=10)
    assert wx.login().returncode == 0  # the lookup fails: the sign-in still stands
    again = json.loads(wx("status", "--json", check=0).stdout)[0]
    assert again["user"] is None, "the previous person's identity was kept"


# --- concurrent first commands -------------------------------------------------------------------


OPEN_BOTH = (
    "from wxtoken import open_store\n"
    "store = open_store()\n"
    "print(store.client_secret('a'), store.client_secret('b'))\n"
)


def test_two_first_commands_at_once_leave_a_store_that_opens(tmp_path: Path, emu: Emulator) -> None:
    """Two `profile add` racing on a new store with the keyring: 20 stores, all open."""

    def add(env: dict[str, str], name: str) -> int:
        proc = subprocess.run(
            [*[WXTOKEN], *profile_add_args(emu, name), "--client-secret-stdin"],
            env=env,
            input=emu.client_secret + "\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.returncode

    opened = 0
    for run in range(20):
        env = base_env(tmp_path / f"run{run}")
        env.pop("WXTOKEN_KEY_FILE")
        env.update(
            PYTHONPATH=str(HELPERS),
            PYTHON_KEYRING_BACKEND="fake_keyring.FileKeyring",
            WXTOKEN_TEST_KEYRING_FILE=str(tmp_path / f"run{run}-keyring.json"),
        )
        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(add, [env, env], ["a", "b"]))
        assert codes == [0, 0], codes
        # Open it as a later command would, with the key the keyring holds now.
        check = subprocess.run(
            [sys.executable, "-c", OPEN_BOTH],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr
        assert check.stdout.split() == [emu.client_secret, emu.client_secret]
        opened += 1
    assert opened == 20


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"name": "rec\n"}, "not allowed"),
        ({"--scopes": "spark:kms \x1b]0;pwned\x07"}, "characters no Webex scope has"),
        ({"--client-id": "0123456789abcdef" * 4}, "looks like a client secret"),
        ({"--client-id": "C12 34"}, "not one Webex issues"),
        ({"--redirect-uri": "http://127.0.0.1:99999/callback"}, "port outside"),
        ({"--redirect-uri": "http://127.0.0.1:8765/c\nb"}, "control characters"),
        ({"--base-url": "https://user:pw-SECRET@webexapis.com"}, "credentials"),
    ],
)
def test_bad_profile_input_is_one_line_and_nothing_is_stored(
    wx: Wx, emu: Emulator, change: dict[str, str], needle: str
) -> None:
    args = profile_add_args(emu)
    if "name" in change:
        args[2] = change["name"]
    for opt, value in change.items():
        if opt.startswith("--"):
            if opt in args:
                args[args.index(opt) + 1] = value
            else:
                args += [opt, value]
            if opt == "--scopes":
                i = args.index("--preset")
                del args[i : i + 2]
    proc = wx(*args, "--client-secret-stdin", input="s\n")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and proc.stderr.count("\n") == 1
    assert "SECRET" not in proc.stderr and "0123456789abcdef" not in proc.stderr
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 0


def test_tampered_kdf_parameters_are_one_line(wx: Wx, emu: Emulator) -> None:
    """A store whose scrypt parameters were edited to ask for a terabyte: refused at once."""
    wx.env.pop("WXTOKEN_KEY_FILE")
    wx.env["WXTOKEN_PASSPHRASE"] = "PASS-CANARY-correct horse"
    wx.add_profile(emu)
    db = Path(wx.env["WXTOKEN_HOME"]) / "wxtoken.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '1099511627776,8,1' WHERE key = 'kdf_params'")
    started = time.monotonic()
    proc = wx("profile", "show", "rec")
    assert proc.returncode == 0  # no key needed to show a profile
    proc = wx(*profile_add_args(emu, "second"), "--client-secret-stdin", input="s\n")
    assert proc.returncode == 6 and "key-derivation parameters" in proc.stderr
    assert proc.stderr.count("\n") == 1 and time.monotonic() - started < 20


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_users_store_is_one_line(logged_in: tuple[Wx, Emulator]) -> None:
    """Run as uid 65534 against a store that belongs to this user: one line, exit 6, no
    traceback, and it says whose store it is instead of suggesting chown."""
    wx, _ = logged_in
    public = Path(tempfile.mkdtemp())
    public.chmod(0o755)
    home = public / "home"
    Path(wx.env["WXTOKEN_HOME"]).rename(home)
    # The child, as nobody, may not read this interpreter's files: load what it runs first, by
    # running the same command once here against an empty home.
    import pwd  # noqa: F401
    import resource  # noqa: F401

    from wxtoken.cli import cli

    warm = dict(os.environ, WXTOKEN_HOME=str(public / "empty"))
    saved = dict(os.environ)
    os.environ.update(warm)
    try:
        cli.main(["status"], prog_name="wxtoken", standalone_mode=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = os.fdopen(w, "w")  # pytest's capture owns the usual one
            env = dict(wx.env, WXTOKEN_HOME=str(home))
            os.environ.clear()
            os.environ.update(env)
            try:
                cli.main(["status"], prog_name="wxtoken", standalone_mode=True)
            except SystemExit as exc:
                code = int(exc.code or 0)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    err = os.read(r, 4000).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 6, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "chown" not in err and "that user" in err


# --- pasteable fixes and conveniences ---------------------------------------------------------


def test_a_wrong_secret_prints_a_fix_that_works_as_printed(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, secret="wrong-secret")
    proc = wx.login()
    assert proc.returncode == 1
    fix = proc.stderr.rsplit("fix: ", 1)[1].strip()
    assert "wxtoken profile set rec --client-secret-stdin" in fix
    command = fix[fix.index("wxtoken") :].split()
    wx(*command[1:], input=emu.client_secret + "\n", check=0)
    assert wx.login().returncode == 0


def test_profile_set_changes_one_setting_and_keeps_the_tokens(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, _ = logged_in
    token = wx("token", check=0).stdout
    new_uri = "https://oauth.pstmn.io/v1/callback"
    wx("profile", "set", "rec", "--redirect-uri", new_uri, check=0)
    shown = json.loads(wx("profile", "show", "rec", "--json", check=0).stdout)
    assert shown["redirect_uri"] == new_uri and shown["has_tokens"] is True
    assert wx("token", check=0).stdout == token
    wx("refresh", "--force", check=0)  # the secret still opens under the new settings
    assert wx("profile", "set", "rec").returncode == 2  # nothing to change: a usage error
    bad = wx("profile", "set", "rec", "--redirect-uri", "ftp://x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_export_env_reaches_child_processes(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    out = wx("export", "--format", "env", check=0).stdout
    assert all(line.startswith("export WEBEX_") for line in out.splitlines())
    script = f'eval "$({WXTOKEN} export --format env)"; sh -c \'echo "$WEBEX_CLIENT_ID"\''
    child = subprocess.run(
        ["bash", "-c", script], env=wx.env, capture_output=True, text=True, check=True
    )
    assert child.stdout.strip() == emu.client_id


def test_ctrl_c_exits_130(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, redirect_uri="https://oauth.pstmn.io/v1/callback")
    proc = subprocess.Popen(
        [WXTOKEN, "login", "--no-browser"],
        env=wx.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)  # waiting for the pasted address
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err


def test_status_at_80_columns_never_cuts_the_state(logged_in: tuple[Wx, Emulator]) -> None:
    wx, emu = logged_in
    wx.add_profile(emu, "second-profile-with-a-long-name")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes `wxtoken status` on the terminal
        env = {k: v for k, v in wx.env.items() if k != "COLUMNS"}
        os.execve(WXTOKEN, [WXTOKEN, "status"], dict(env, TERM="xterm"))  # noqa: S606
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode("utf-8", "replace"))
    assert "login_required" in text and " ok " in text.replace("│", " "), text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_a_socket_path_too_long_is_one_line(logged_in: tuple[Wx, Emulator]) -> None:
    wx, _ = logged_in
    long_path = "/tmp/" + "x" * 120 + "/keeper.sock"
    proc = wx("keep", "--metrics-listen", "127.0.0.1:0", "--socket", long_path, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "at most 107" in proc.stderr and "Traceback" not in proc.stderr
    # A client given such a path finds no keeper there and reads the store itself.
    got = wx("token", env={"WXTOKEN_SOCKET": long_path})
    assert got.returncode == 0 and "Traceback" not in got.stderr
    assert wx("status", env={"WXTOKEN_SOCKET": long_path}).returncode == 0
