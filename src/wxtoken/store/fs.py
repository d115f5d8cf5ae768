"""Who may touch the store's files: 0700 directories, 0600 files, nobody else's, no links.

Files are created private (O_CREAT|O_EXCL with mode 0600), never chmod-ed afterwards, and checked
with fstat on the opened descriptor before use, as OpenSSH does for private keys. Where the files
are is decided by `_local.Settings`; what counts as private by `_local.private_problem`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .. import _local
from ..errors import StorageError, UnsafePermissions


def ensure_private_dir(path: Path) -> None:
    """Create `path` 0700 if missing; refuse it if it is shared or someone else's."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(
            f"cannot create the wxtoken directory {path} ({exc.strerror})",
            fix=f"set WXTOKEN_HOME to a writable directory, or fix the rights on {path.parent}",
        ) from None
    check_private(path, is_dir=True)


def check_private(path: Path, *, is_dir: bool, st: os.stat_result | None = None) -> None:
    try:
        st = st or os.lstat(path)
    except FileNotFoundError:
        return
    except PermissionError:
        raise unreadable(path) from None
    problem = _local.private_problem(st, is_dir=is_dir)
    if problem == _local.NOT_PRIVATE_SYMLINK:
        raise UnsafePermissions(
            f"{path} is a symbolic link; wxtoken does not follow links in its store",
            fix=f"replace {path} with a real {'directory' if is_dir else 'file'}",
        )
    if problem == _local.NOT_PRIVATE_TYPE:
        raise UnsafePermissions(
            f"{path} is not a {'directory' if is_dir else 'regular file'}",
            fix=f"move {path} aside or set WXTOKEN_HOME elsewhere",
        )
    if problem == _local.NOT_PRIVATE_OWNER:
        raise UnsafePermissions(
            f"{path} belongs to {_user(st.st_uid)}, not to you ({_user(os.geteuid())}); it "
            "is that user's store",
            fix=_run_as(st.st_uid),
        )
    if problem == _local.NOT_PRIVATE_MODE:
        mode = "700" if is_dir else "600"
        raise UnsafePermissions(
            f"{path} is accessible to other users (mode {stat.S_IMODE(st.st_mode):o})",
            fix=f"chmod {mode} {path}",
        )


def _user(uid: int) -> str:
    import pwd

    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _run_as(uid: int) -> str:
    """Run as the store's owner: changing its owner would break that user's keeper."""
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return (
        f"run wxtoken as that user (e.g. sudo -u {name} wxtoken ...), or set WXTOKEN_HOME to a "
        "directory of your own"
    )


def unreadable(path: Path) -> UnsafePermissions:
    """A store path we may not even look at: it sits in another user's private directory."""
    for parent in (path, *path.parents):
        try:
            owner = os.stat(parent).st_uid
        except OSError:
            continue
        if owner != os.geteuid():
            return UnsafePermissions(
                f"{path} is not readable by you: it is in a directory of {_user(owner)}",
                fix=_run_as(owner),
            )
    return UnsafePermissions(
        f"{path} is not readable by you", fix="set WXTOKEN_HOME to a directory of your own"
    )


def create_private_file(path: Path, content: bytes = b"") -> None:
    """Create a new 0600 file atomically with content; fails if it exists (no symlink games)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        # link() refuses to replace an existing file, so a racing creator wins cleanly.
        os.link(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_dir(path.parent)


def read_private_file(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise StorageError(
            f"cannot read {path} ({exc.strerror})",
            fix=f"check that {path} exists and is yours",
        ) from None
    with os.fdopen(fd, "rb") as fh:
        check_private(path, is_dir=False, st=os.fstat(fh.fileno()))
        return fh.read(1 << 16)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
