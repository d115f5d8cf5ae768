"""The emulator's state file (`--state-file`): snapshot, restore and save.

The format is version 1 as written by release 0.1.0; restore reads it unchanged. A save writes
a temp file next to the target, fsyncs it and renames it over the target.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .clock import Clock, SystemClock, offset_of
from .model import AccessToken, Code, Grant, Integration, Policy, ServiceApp, User
from .state import Emulator

FORMAT_VERSION = 1


def snapshot(emu: Emulator) -> dict[str, Any]:
    """Everything a restart needs; faults, ledger, devices and pending consents are not kept."""

    def dump(items: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dataclasses.asdict(v) for v in items.values()]

    return {
        "version": FORMAT_VERSION,
        "policy": dataclasses.asdict(emu.policy),
        "cluster": emu.cluster,
        "offset": offset_of(emu.clock),
        "integrations": dump(emu.integrations),
        "users": dump(emu.users),
        "service_apps": dump(emu.service_apps),
        "codes": dump(emu.codes),
        "grants": dump(emu.grants),
        "retired_refresh": {k: list(v) for k, v in emu.retired_refresh.items()},
        "access": dump(emu.access),
        "messages": emu.messages,
        "consent_user": emu.consent_user,
    }


def restore(data: Mapping[str, Any], *, clock: Clock | None = None) -> Emulator:
    """An Emulator from `snapshot` data; without `clock`, wall time plus the saved offset."""
    if clock is None:
        clock = SystemClock(float(data.get("offset", 0.0)))
    emu = Emulator(Policy(**data["policy"]), cluster=data.get("cluster", "PF84"), clock=clock)
    for d in data["integrations"]:
        emu.add_integration(Integration(**d))
    for d in data["users"]:
        emu.users[d["uuid"]] = User(**d)
    for d in data["service_apps"]:
        emu.add_service_app(ServiceApp(**d))
    for d in data["codes"]:
        emu.codes[d["value"]] = Code(**d)
    for d in data["grants"]:
        g = Grant(**d)
        emu.grants[g.id] = g
        if not g.revoked:
            emu.refresh_index[g.refresh_token] = g.id
    emu.retired_refresh = {k: (v[0], v[1]) for k, v in data["retired_refresh"].items()}
    for d in data["access"]:
        emu.access[d["value"]] = AccessToken(**d)
    emu.messages = list(data.get("messages", []))
    emu.consent_user = data.get("consent_user")
    return emu


def save(emu: Emulator, path: Path) -> None:
    """Write `emu`'s snapshot to `path` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(snapshot(emu), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
