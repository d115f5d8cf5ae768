"""The time one exchange may take: per-operation timeouts under one whole-exchange deadline.

Every blocking socket call first asks its `Budget` how long it may block: its own timeout (connect,
read or write), cut down to what is left before the deadline. A server that trickles a byte per
second therefore cannot hold an exchange past the deadline, and the timeout that fires is reported
as what it was: the operation's own timeout, or the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2

from .errors import CONNECT, deadline_exceeded, timed_out

if TYPE_CHECKING:
    from .connection import Origin


@dataclass(slots=True)
class Budget:
    origin: Origin
    deadline: float  # absolute, on `clock`
    clock: Callable[[], float]
    connect_timeout: float | None
    read_timeout: float | None
    write_timeout: float | None
    phase: str = CONNECT
    _limit: float = 0.0  # what the last allowance granted ...
    _deadline_binds: bool = False  # ... and whether the deadline was what limited it

    def allow(self, timeout: float | None) -> float:
        """Seconds the next blocking call may take; raises once the deadline has passed."""
        left = self.deadline - self.clock()
        if left <= 0:
            raise deadline_exceeded(self.phase, self.origin)
        if timeout is not None and timeout < left:
            self._limit, self._deadline_binds = timeout, False
            return timeout
        self._limit, self._deadline_binds = left, True
        return left

    def check(self) -> None:
        """Raise if the deadline has passed, even when the next read needs no system call."""
        if self.clock() >= self.deadline:
            raise deadline_exceeded(self.phase, self.origin)

    def expired(self) -> httpx2.TimeoutException:
        """The exception for a blocking call that ran out of the time `allow` granted."""
        if self._deadline_binds:
            return deadline_exceeded(self.phase, self.origin)
        return timed_out(self.phase, self.origin, self._limit)
