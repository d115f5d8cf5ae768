"""The systemd unit shipped for the keeper: hardened, no core dumps, time enough to stop."""

from __future__ import annotations

from tests.conftest import ROOT
from wxtoken._local import Timeouts

UNIT = ROOT / "contrib" / "wxtoken-keeper.service"


def service_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_no_core_dumps() -> None:
    # A core dump of the keeper would hold decrypted tokens and the store key.
    assert service_settings()["LimitCORE"] == ["0"]


def test_still_hardened_and_given_time_to_stop() -> None:
    s = service_settings()
    assert s["UMask"] == ["0077"] and s["NoNewPrivileges"] == ["yes"]
    assert s["ProtectSystem"] == ["strict"] and s["ProtectHome"] == ["yes"]
    assert s["KillSignal"] == ["SIGTERM"] and s["Restart"] == ["on-failure"]
    # Stopping waits for a refresh in flight, which ends at the latest at its HTTP deadline.
    assert int(s["TimeoutStopSec"][0]) > Timeouts().http_deadline
