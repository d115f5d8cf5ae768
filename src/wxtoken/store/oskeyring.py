"""The OS keyring (Secret Service, KWallet, Keychain), every call bounded by a timeout.

A keyring can hang on an unlock prompt nobody answers, so each call runs in a daemon thread and
costs at most `timeout`. Trouble comes back as `KeyringTrouble`, saying whether there is no
keyring at all (a headless server: nothing to unlock) or one that cannot be used right now;
`keys` turns it into the message and fix that fit the moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeyringProblem:
    """Why the OS keyring cannot hold a key here; `absent`: there is none at all (a server)."""

    reason: str
    absent: bool


class KeyringTrouble(Exception):
    def __init__(self, problem: KeyringProblem):
        super().__init__(problem.reason)
        self.problem = problem


def keyring_problem(service: str, timeout: float) -> KeyringProblem | None:
    """None if the OS keyring answers a read now; else what stands in the way."""
    try:
        keyring_get(service, "usable?", timeout)
    except KeyringTrouble as exc:
        return exc.problem
    return None


def keyring_get(service: str, name: str, timeout: float) -> str | None:
    value = _in_keyring(lambda kr: kr.get_password(service, name), timeout)
    return value if isinstance(value, str) else None


def keyring_set(service: str, name: str, value: str, timeout: float) -> None:
    _in_keyring(lambda kr: kr.set_password(service, name, value), timeout)


def _in_keyring(op: Callable[[Any], Any], timeout: float) -> Any:
    """Run `op(keyring)` in a daemon thread, so a hung backend costs `timeout`, not forever."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            import keyring
            import keyring.backends.fail

            backend = keyring.get_keyring()
            if (
                isinstance(backend, keyring.backends.fail.Keyring)
                or "null" in type(backend).__module__.lower()
            ):
                result["absent"] = True
                return
            result["value"] = op(keyring)
        except Exception as exc:  # the keyring's own errors vary by backend
            result["error"] = f"{type(exc).__name__}"

    worker = threading.Thread(target=run, name="wxtoken-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        reason = f"the OS keyring did not answer within {timeout:g} s"
        raise KeyringTrouble(KeyringProblem(reason, absent=False))
    if result.get("absent"):
        reason = "the OS keyring is unavailable: this system has none (no Secret Service, "
        raise KeyringTrouble(KeyringProblem(reason + "KWallet or Keychain)", absent=True))
    if "error" in result:
        reason = f"the OS keyring is unavailable ({result['error']})"
        raise KeyringTrouble(KeyringProblem(reason, absent=False))
    return result.get("value")
