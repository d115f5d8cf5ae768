"""The emulator's state file (`--state-file`): snapshot, restore, and a save nobody can redirect.

The format is version 1 as written by release 0.1.0; restore reads it unchanged. A save writes
a temp file next to the target, created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600)
so a planted symlink or file is never written through, fsyncs it and renames it over the target
(a rename replaces a symlink at the target, it does not follow it). `check_state_path` refuses,
before the server starts, a state file that is a symlink or lives in a directory other users
can write to, where such plants are possible at all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .causes import load_seeded_state, seeded_state
from .clock import Clock, SystemClock, offset_of
from .model import AccessToken, Code, Grant, Integration, Policy, ServiceApp, User
from .state import Emulator

FORMAT_VERSION = 1


class UnsafeStateFile(Exception):
    """The state file's path is open to tampering; `fix` says what to do."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


# Fields added since release 0.1.0 are written only when they differ from their default, so a
# state that never used them is written exactly as that release wrote it, and reads there.
LATER_FIELDS = frozenset(
    {"token_limit", "revoke_on_block", "revoke_on_admin_loss", "revoke_on_org_change", "revoked_by"}
)


def _record(value: Any) -> dict[str, Any]:
    data = dataclasses.asdict(value)
    for f in dataclasses.fields(value):
        if f.name in LATER_FIELDS and data[f.name] == f.default:
            del data[f.name]
    return data


def snapshot(emu: Emulator) -> dict[str, Any]:
    """Everything a restart needs; faults, ledger, devices and pending consents are not kept."""

    def dump(items: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [_record(v) for v in items.values()]

    return {
        "version": FORMAT_VERSION,
        "policy": _record(emu.policy),
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
        **seeded_state(emu),
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
    load_seeded_state(emu, data)
    return emu


def check_state_path(path: Path) -> None:
    """Refuse a state file that is a symlink, or not a file, or whose directory other users
    can write to or own (they could plant a link where the file or its temp file goes)."""
    directory = path.parent
    try:
        dst = os.stat(directory)
    except OSError as exc:
        raise UnsafeStateFile(
            f"the emulator state file's directory {directory} is unusable ({exc.strerror})",
            fix="create the directory, or pick another --state-file",
        ) from None
    if dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStateFile(
            f"the emulator state file's directory {directory} is writable by other users",
            fix=f"chmod go-w {directory}, or put the state file in a private directory",
        )
    if dst.st_uid not in (os.geteuid(), 0):
        raise UnsafeStateFile(
            f"the emulator state file's directory {directory} belongs to uid {dst.st_uid}",
            fix="put the state file in a directory of your own",
        )
    try:
        fst = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(fst.st_mode):
        raise UnsafeStateFile(
            f"the emulator state file {path} is a symbolic link; it is not followed",
            fix="give the real path, or remove the link",
        )
    if not stat.S_ISREG(fst.st_mode):
        raise UnsafeStateFile(
            f"the emulator state file {path} is not a regular file",
            fix="pick another --state-file",
        )


def load(path: Path) -> dict[str, Any]:
    """The state file's JSON, opened without following a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        data = json.loads(fh.read())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def save(emu: Emulator, path: Path) -> None:
    """Write `emu`'s snapshot to `path` atomically; never through a planted link or file."""
    data = memoryview(json.dumps(snapshot(emu)).encode())
    tmp = path.with_name(path.name + ".tmp")
    fd = _create_exclusive(tmp)
    try:
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _create_exclusive(tmp: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, 0o600)
    except FileExistsError:
        # A temp file left by a crash, or something planted: remove the entry (unlink never
        # follows a link) and create afresh; if it comes back at once, give up loudly.
        _unlink(tmp)
        return os.open(tmp, flags, 0o600)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
