"""The emulator's one source of time, injected so lifetimes can be tested without sleeping.

Every reading of time by the emulator's rules goes through a `Clock`. The subprocess server uses
`SystemClock` (wall time plus an offset that `POST /_emulator/clock` moves); in-process tests use
`ManualClock`, which moves only when told. Both are callables returning `now()`, so a test can
hand the same object to code that takes a plain `Callable[[], float]` (TokenManager's clock)
and both sides of the wire agree on the time.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Epoch seconds; `advance` and `reset` are how the emulator's owner moves them."""

    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...

    def reset(self) -> None: ...

    def __call__(self) -> float: ...


class SystemClock:
    """Wall time plus `offset` seconds; `advance` grows the offset, `reset` drops it."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = float(offset)

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += float(seconds)

    def reset(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return self.now()

    def __repr__(self) -> str:
        return f"SystemClock(offset={self.offset!r})"


class ManualClock:
    """A clock that stands still until `advance`; `reset` returns it to `start`."""

    def __init__(self, start: float) -> None:
        self.start = float(start)
        self._now = self.start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += float(seconds)

    def reset(self) -> None:
        self._now = self.start

    def __call__(self) -> float:
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


def offset_of(clock: Clock) -> float:
    """How far `clock` is ahead of wall time: what a state file records to restore it."""
    if isinstance(clock, SystemClock):
        return clock.offset
    return clock.now() - time.time()
