"""`wxtoken keep --print-systemd-unit`: a unit that starts the wxtoken that printed it, with the
settings in effect and no secret, hardened; checked by `systemd-analyze verify` where it is
installed. The example in contrib/ is this code's output for a typical system install, and a
test keeps it so (regenerate it with `.venv/bin/python -m tests.test_keeper_systemd`)."""

from __future__ import annotations

import math
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, WXTOKEN, Emulator, Wx, assert_no_secret, canary
from wxtoken._local import Settings
from wxtoken.keeper import systemd
from wxtoken.keeper.config import parse_config
from wxtoken.keeper.daemon import socket_path

EXAMPLE = ROOT / "contrib" / "wxtoken-keeper.service"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "LimitCORE": "0",
    "UMask": "0077",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
}

Unit = dict[str, dict[str, list[str]]]


def parse(text: str) -> Unit:
    """Sections of key = [values], as systemd reads them (comments and blank lines skipped)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"not a setting: {line!r}"
        section.setdefault(key, []).append(value)
    return unit


def check_structure(unit: Unit, home: str, settings: Settings | None = None) -> list[str]:
    """What every printed unit has; returns ExecStart's words. Stopping outlasts the longest
    refresh under `settings` (the default ones if None)."""
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert service[key] == [value], key
    assert service["ProtectHome"][0] in ("yes", "read-only")
    assert home in service["ReadWritePaths"]
    assert service["EnvironmentFile"] == [f"-{systemd.ENV_FILE}"]
    worst = (settings or Settings({})).timeouts.refresh_worst
    assert int(service["TimeoutStopSec"][0]) > worst
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    (exec_start,) = service["ExecStart"]
    words = exec_start.split()
    assert Path(words[0]).is_absolute()
    return words


def test_the_printed_unit_runs_this_wxtoken_with_these_settings(wx: Wx, tmp_path: Path) -> None:
    config = tmp_path / "keeper.toml"
    config.write_text(
        '[[alerts.webex]]\nroom_id = "ROOM"\ntoken_env = "WXTOKEN_TEST_BOT"\n'
        '[metrics]\nlisten = "127.0.0.1:9555"\n'
    )
    bot = canary("bot")
    proc = wx(
        "keep",
        "-p",
        "rec",
        "--config",
        str(config),
        "--print-systemd-unit",
        env={"WXTOKEN_TEST_BOT": bot, "WXTOKEN_HTTP_DEADLINE": "45"},
        check=0,
    )
    unit = parse(proc.stdout)
    home = wx.env["WXTOKEN_HOME"]
    words = check_structure(unit, home, Settings({"WXTOKEN_HTTP_DEADLINE": "45"}))
    assert words[0] == os.path.realpath(WXTOKEN), "not the wxtoken that printed it"
    assert Path(words[0]).is_file() and os.access(words[0], os.X_OK)
    assert words[1:] == ["keep", "-p", "rec", "--config", str(config)]
    env = dict(v.split("=", 1) for v in unit["Service"]["Environment"])
    assert env == {
        "WXTOKEN_HOME": home,
        "WXTOKEN_KEY_FILE": wx.env["WXTOKEN_KEY_FILE"],
        "WXTOKEN_HTTP_DEADLINE": "45",
    }
    # Its secrets are named, for the EnvironmentFile, never given.
    assert "WXTOKEN_TEST_BOT" in proc.stdout
    assert_no_secret([proc.stdout, proc.stderr], [bot])
    # Stopping waits for a refresh of this deadline in flight, and for storing it.
    lock_wait = Settings({"WXTOKEN_HTTP_DEADLINE": "45"}).timeouts.lock_wait
    assert unit["Service"]["TimeoutStopSec"] == [str(math.ceil(lock_wait))]
    assert unit["Service"]["User"] == [pwd.getpwuid(os.geteuid()).pw_name]


def test_a_passphrase_is_named_never_given(wx: Wx) -> None:
    passphrase = canary("passphrase")
    env = {"WXTOKEN_KEY_FILE": "", "WXTOKEN_PASSPHRASE": passphrase}
    proc = wx("keep", "--all", "--print-systemd-unit", env=env, check=0)
    unit = parse(proc.stdout)
    check_structure(unit, wx.env["WXTOKEN_HOME"])
    assert "WXTOKEN_PASSPHRASE" in proc.stdout and systemd.ENV_FILE in proc.stdout
    assert not any("PASSPHRASE" in v for v in unit["Service"]["Environment"])
    assert_no_secret([proc.stdout, proc.stderr], [passphrase])


def test_the_stores_own_key_source_is_what_counts(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)  # the store is created with a key file
    proc = wx("keep", "--all", "--print-systemd-unit", env={"WXTOKEN_KEY_FILE": ""}, check=0)
    assert "The store's key is a key file: print this unit with WXTOKEN_KEY_FILE set" in (
        proc.stdout
    )
    assert "OS keyring" not in proc.stdout
    proc = wx("keep", "--all", "--print-systemd-unit", check=0)
    assert "key file" not in proc.stdout and "OS keyring" not in proc.stdout
    assert f"Environment=WXTOKEN_KEY_FILE={wx.env['WXTOKEN_KEY_FILE']}" in proc.stdout


def test_a_keyring_store_is_called_out() -> None:
    settings = Settings({"WXTOKEN_HOME": "/var/lib/wxtoken"})
    text = render_example(settings, stored="keyring")
    assert "OS keyring, which a system service cannot reach" in text


def test_paths_are_quoted_as_systemd_reads_them() -> None:
    settings = Settings({"WXTOKEN_HOME": "/srv/wx token/100%"})
    running = systemd.Running(("/opt/wx$/bin/wxtoken",), ("/usr",), "wx", "wx")
    config = parse_config({})
    text = systemd.render_unit(
        running, ["keep", "--all"], settings, config, Path("/srv/wx token/100%/keeper.sock")
    )
    service = parse(text)["Service"]
    assert service["ExecStart"] == ["/opt/wx$$/bin/wxtoken keep --all"]
    assert service["Environment"] == ['"WXTOKEN_HOME=/srv/wx token/100%%"']
    assert service["ReadWritePaths"] == ['"/srv/wx token/100%%"']
    with pytest.raises(Exception, match="line break"):
        systemd.render_unit(
            running, ["keep", "-p", "a\nb"], settings, config, Path("/srv/keeper.sock")
        )


def test_a_home_under_home_is_made_read_only_not_hidden() -> None:
    settings = Settings({"WXTOKEN_HOME": "/home/me/.local/share/wxtoken"})
    service = parse(render_example(settings, stored="keyfile"))["Service"]
    assert service["ProtectHome"] == ["read-only"]
    assert service["ReadWritePaths"] == ["/home/me/.local/share/wxtoken"]


def test_the_command_is_the_running_console_script(tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    script = venv / "wxtoken"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    link = tmp_path / "wxtoken"
    link.symlink_to(script)  # a pipx-style shim on PATH
    assert systemd.wxtoken_command(str(link), "/usr/bin/python3", lambda _: None) == [
        str(script.resolve())
    ]
    # Started as `python -m wxtoken` from a venv: the script beside the interpreter.
    python = venv / "python"
    assert systemd.wxtoken_command("/x/__main__.py", str(python), lambda _: None) == [
        str(script.resolve())
    ]
    # No console script anywhere: the interpreter runs the package.
    bare = tmp_path / "bare" / "python"
    assert systemd.wxtoken_command("/x/__main__.py", str(bare), lambda _: None) == [
        str(bare),
        "-m",
        "wxtoken",
    ]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_printed_unit(wx: Wx, tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    Path(wx.env["WXTOKEN_HOME"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    proc = wx("keep", "--all", "--print-systemd-unit", check=0)
    unit = tmp_path / systemd.UNIT_NAME
    unit.write_text(proc.stdout)
    verify = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # Only this unit's own findings count (a container's other units may have their own).
    findings = [line for line in verify.stderr.splitlines() if systemd.UNIT_NAME in line]
    assert verify.returncode == 0 and not findings, verify.stderr


def render_example(settings: Settings, stored: str | None) -> str:
    """The unit for a system install in /opt/wxtoken run by a `wxtoken` account."""
    running = systemd.Running(
        command=("/opt/wxtoken/bin/wxtoken",),
        interpreter=("/opt/wxtoken", "/usr", "/usr/bin/python3.11"),
        user="wxtoken",
        group="wxtoken",
    )
    config = parse_config(
        {"alerts": {"webex": [{"room_id": "ROOM", "token_env": "WXTOKEN_ALERT_BOT_TOKEN"}]}}
    )
    args = ["keep", "--all", "--config", "/etc/wxtoken/keeper.toml"]
    sock = socket_path(settings, config, None)
    return systemd.render_unit(running, args, settings, config, sock, stored)


def example() -> str:
    settings = Settings({"WXTOKEN_HOME": "/var/lib/wxtoken"})
    return render_example(settings, stored="passphrase")


def test_the_contrib_example_is_this_codes_output() -> None:
    regenerate = ".venv/bin/python -m tests.test_keeper_systemd"
    assert EXAMPLE.read_text() == example(), f"contrib/ is out of date: {regenerate}"
    unit = parse(EXAMPLE.read_text())
    words = check_structure(unit, "/var/lib/wxtoken")
    assert words == [
        "/opt/wxtoken/bin/wxtoken",
        *"keep --all --config /etc/wxtoken/keeper.toml".split(),
    ]
    assert unit["Service"]["ProtectHome"] == ["yes"]
    assert "WXTOKEN_PASSPHRASE" in EXAMPLE.read_text()


if __name__ == "__main__":
    EXAMPLE.write_text(example())
    print(f"wrote {EXAMPLE}")
