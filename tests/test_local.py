"""Local settings: one place decides every WXTOKEN_* variable, path and dependent timeout."""

from __future__ import annotations

import pytest

from wxtoken import _local
from wxtoken._local import SettingError, Settings, Timeouts


@pytest.mark.parametrize("xdg", [None, "", "  ", "/srv/data"])
def test_default_home_matches_platformdirs_on_linux(
    xdg: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platformdirs.unix

    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    import os

    want = platformdirs.unix.Unix("wxtoken", appauthor=False).user_data_dir
    assert _local.default_home(os.environ, platform="linux") == want


def test_default_home_matches_platformdirs_on_macos() -> None:
    import platformdirs.macos

    want = platformdirs.macos.MacOS("wxtoken", appauthor=False).user_data_dir
    assert _local.default_home({}, platform="darwin") == want


def test_every_path_derives_from_the_home(tmp_path: object) -> None:
    s = Settings({"WXTOKEN_HOME": "~/x/../wx"})
    assert s.home.endswith("/wx") and s.home.startswith("/") and ".." not in s.home
    assert s.db_path == f"{s.home}/wxtoken.db"
    assert s.socket_path == f"{s.home}/keeper.sock"
    assert s.lock_dir == f"{s.home}/locks"
    assert not s.socket_explicit
    t = Settings({"WXTOKEN_HOME": "/a", "WXTOKEN_SOCKET": "/run/k.sock"})
    assert t.socket_path == "/run/k.sock" and t.socket_explicit


def test_no_home_variable_means_the_platform_directory() -> None:
    s = Settings({"HOME": "/home/u"})
    assert not s.home_explicit
    assert s.home == _local.default_home({"HOME": "/home/u"})
    assert s.socket_path == f"{s.home}/keeper.sock"


def test_timeouts_are_derived_so_a_waiter_outlasts_any_refresh() -> None:
    for deadline in (1.0, 5.0, 60.0, 600.0):
        t = Timeouts(deadline)
        # The last retry may start just inside the budget and then run a whole deadline.
        assert t.refresh_worst == t.retry_budget + deadline
        assert t.lock_wait > t.refresh_worst
        # A silent holder of a shared store's lock is dropped after any live refresh would have
        # spoken again, and before a waiter gives up.
        assert t.refresh_worst < t.holder_idle < t.lock_wait
        # A socket client may wait for the lock and then for the keeper's own refresh.
        assert t.keeper_answer > t.lock_wait + t.refresh_worst
    assert Settings({"WXTOKEN_HTTP_DEADLINE": "5"}).timeouts.http_deadline == 5.0
    assert Settings({}).timeouts.http_deadline == _local.DEFAULT_HTTP_DEADLINE


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "1e999", "inf"])
def test_bad_numbers_are_one_clear_setting_error(value: str) -> None:
    with pytest.raises(SettingError) as info:
        Settings({"WXTOKEN_HTTP_DEADLINE": value})
    assert "WXTOKEN_HTTP_DEADLINE" in info.value.message and "unset" in info.value.fix
    with pytest.raises(SettingError):
        Settings({"WXTOKEN_KEYRING_TIMEOUT": value})


def test_secrets_stay_out_of_the_repr_and_of_child_processes() -> None:
    env = {
        "WXTOKEN_PASSPHRASE": "PASS-CANARY-0123456789",
        "WXTOKEN_CLIENT_SECRET": "CS-CANARY-0123456789",
        "WXTOKEN_HOME": "/h",
        "PATH": "/bin",
        "WXTOKEN_STORE": "postgresql://u:PW-CANARY-0123456789@db/wx",
        "PGPASSWORD": "PGPW-CANARY-0123456789",
    }
    s = Settings(env)
    assert s.passphrase == env["WXTOKEN_PASSPHRASE"]
    assert "CANARY" not in repr(s)
    child = _local.child_environment(env)
    assert child == {"WXTOKEN_HOME": "/h", "PATH": "/bin"}


def test_private_problem_names_each_fault(tmp_path: object) -> None:
    import os
    import pathlib

    base = pathlib.Path(str(tmp_path))
    f = base / "f"
    f.write_text("x")
    os.chmod(f, 0o600)
    assert _local.private_problem(os.lstat(f), is_dir=False) is None
    assert _local.private_problem(os.lstat(f), is_dir=True) == _local.NOT_PRIVATE_TYPE
    os.chmod(f, 0o640)
    assert _local.private_problem(os.lstat(f), is_dir=False) == _local.NOT_PRIVATE_MODE
    link = base / "l"
    link.symlink_to(f)
    assert _local.private_problem(os.lstat(link), is_dir=False) == _local.NOT_PRIVATE_SYMLINK
