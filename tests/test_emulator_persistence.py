"""The emulator's state file: a save never writes through a planted symlink, unsafe paths are
refused at start, and the format written by release 0.1.0 still restores and refreshes."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import ROOT, WXTOKEN
from tests.emulator_inproc import BASE_URL
from tests.emulator_requests import bearer
from wxtoken.emulator import Emulator, EmulatorTransport, ManualClock, SystemClock
from wxtoken.emulator.server import EmulatorOptions, build
from wxtoken.errors import UsageError

FIXTURE = ROOT / "tests" / "fixtures" / "store-v1"


def private_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


def seeded(path: Path | None = None) -> Emulator:
    emu = Emulator()
    emu.seed_default()
    emu.persist_path = path
    return emu


def test_save_never_writes_through_a_symlink_at_the_temp_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    state = private_dir(tmp_path) / "emu.json"
    tmp = state.with_name("emu.json.tmp")
    tmp.symlink_to(victim)
    emu = seeded(state)
    emu.save()
    intact = victim.read_text() == "precious"  # compared quietly: a failure would print secrets
    assert intact, "the save wrote through the symlink"
    saved = json.loads(state.read_text())
    assert [i["client_id"] for i in saved["integrations"]] == list(emu.integrations)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert not tmp.exists() and not tmp.is_symlink()


def test_save_replaces_a_symlink_at_the_target_without_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    state = private_dir(tmp_path) / "emu.json"
    state.symlink_to(victim)
    seeded(state).save()
    intact = victim.read_text() == "precious"
    assert intact, "the save wrote through the symlink"
    assert not state.is_symlink() and json.loads(state.read_text())["version"] == 1


def test_save_survives_a_stale_temp_file(tmp_path: Path) -> None:
    state = private_dir(tmp_path) / "emu.json"
    state.with_name("emu.json.tmp").write_text("left by a crash")
    emu = seeded(state)
    emu.save()
    assert json.loads(state.read_text())["consent_user"] == emu.consent_user


def test_a_symlinked_state_file_is_refused_at_start(tmp_path: Path) -> None:
    # The link leads to a perfectly good state file: following it would read (and then
    # replace) whatever the link's owner chose.
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(seeded().snapshot()))
    state = private_dir(tmp_path) / "emu.json"
    state.symlink_to(elsewhere)
    with pytest.raises(UsageError, match="symbolic link"):
        build(EmulatorOptions(state_file=state))
    proc = subprocess.run(
        [WXTOKEN, "emulator", "--port", "0", "--state-file", str(state)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "symbolic link" in proc.stderr


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702], ids=lambda m: f"{m:o}")
def test_a_directory_other_users_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(UsageError, match="writable by other users") as refused:
        build(EmulatorOptions(state_file=shared / "emu.json"))
    assert refused.value.fix is not None and "chmod go-w" in refused.value.fix
    shared.chmod(0o700)
    emu, _ = build(EmulatorOptions(state_file=shared / "emu.json"))
    assert emu.persist_path == shared / "emu.json"


def test_snapshot_round_trip_keeps_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(2_000_000_000)
    emu = Emulator(clock=clock)
    emu.seed_default()
    clock.advance(3600)
    again = Emulator.restore(emu.snapshot())
    assert isinstance(again.clock, SystemClock)
    assert abs(again.now() - clock.now()) < 5
    manual = Emulator.restore(emu.snapshot(), clock=ManualClock(42))
    assert manual.now() == 42 and manual.integrations.keys() == emu.integrations.keys()


def test_state_written_by_release_0_1_0_restores_and_refreshes() -> None:
    meta = json.loads((FIXTURE / "meta.json").read_text())
    data: dict[str, Any] = json.loads((FIXTURE / "emulator-state.json").read_text())
    integ = data["integrations"][0]
    assert integ["client_id"] == meta["client_id"]
    clock = ManualClock(meta["created_at"] + 60)  # a minute after the fixture was made
    emu = Emulator.restore(data, clock=clock)
    # The format only grew: what that release wrote is written the same, and a field added
    # since (an integration's extra secrets) holds its default.
    again = emu.snapshot()
    assert again.keys() == data.keys()
    grown = [dict(i) for i in again["integrations"]]
    assert all(i.pop("extra_secrets") == [] for i in grown)
    assert {k: v for k, v in dict(again, integrations=grown).items() if k != "offset"} == {
        k: v for k, v in data.items() if k != "offset"
    }
    form = {
        "grant_type": "refresh_token",
        "refresh_token": meta["refresh_token_at_export"],
        "client_id": integ["client_id"],
        "client_secret": integ["client_secret"],
    }
    with httpx2.Client(transport=EmulatorTransport(emu), base_url=BASE_URL) as http:
        r = http.post("/v1/access_token", data=form)
        assert r.status_code == 200, r.json()["errors"]
        body = r.json()
        me = http.get("/v1/people/me", headers=bearer(body["access_token"])).json()
    unrotated = body["refresh_token"] == meta["refresh_token_at_export"]
    assert unrotated, "the refresh token changed; that release never rotated"
    assert body["expires_in"] == 3599 and body["refresh_token_expires_in"] == 315359999
    assert body["scope"].split() == meta["status"][0]["scopes"]
    assert me["emails"] == [meta["status"][0]["user"]]
