"""Whether this keeper acts or stands by, when several keepers share one store.

The keepers of one group (the same profiles, or all of them) elect a leader through the store
(store.pg_leader on PostgreSQL; on the embedded store a keeper always leads). Only the leader
schedules refreshes and probes and sends alerts; every keeper serves its host's token socket
and /metrics from the shared store. A keeper that stands by asks for the lead every
`LEADER_POLL` seconds, so when the leader dies another takes over within LEADER_POLL plus the
time the database takes to notice: at once for a killed process (its socket closes), and the
server's TCP keepalive time (11 s, see pg_pool.py) for a host cut off the network.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import IO

from .._local import process_label
from ..store import TokenStore

LEADER_POLL = 1.0  # seconds between a standing-by keeper's bids for the lead


def group_of(wanted: tuple[str, ...] | None) -> str:
    """Keepers keeping the same profiles form one group: all of them, or the same list."""
    if wanted is None:
        return "all"
    return "profiles:" + hashlib.sha256("\n".join(sorted(wanted)).encode()).hexdigest()[:16]


class Lead:
    def __init__(
        self,
        store: TokenStore,
        wanted: tuple[str, ...] | None,
        log: IO[str],
        on_lead: Callable[[], None],
    ):
        self._store = store
        self._lease = store.records.leadership(group_of(wanted), process_label("keep"))
        self._log = log
        self._on_lead = on_lead
        self.leading = False
        self._announced = False  # "standing by" is said once, not every poll

    @property
    def identity(self) -> str:
        return self._lease.identity

    def check(self) -> bool:
        """Bid for (or confirm) the lead; say so in the log when it changes."""
        now = self._lease.lead()
        if now and not self.leading:
            self.leading = True
            self._log.write(f"wxtoken keep: leading ({self.identity})\n")
            self._on_lead()
        elif not now and self.leading:
            self.leading = False
            self._log.write("wxtoken keep: lost the lead; standing by\n")
        elif not now and not self._announced:
            self._announced = True
            leader = self._lease.leader() or "none yet"
            self._log.write(f"wxtoken keep: standing by; leader: {leader}\n")
        return self.leading

    def leader(self) -> str | None:
        return self._lease.leader()

    def interval(self, check_interval: float) -> float:
        """The longest the keeper may sleep between passes: a standby bids again soon, and a
        leader on a shared store confirms its lead within its heartbeat or loses it."""
        if not self.leading:
            return min(check_interval, LEADER_POLL)
        heartbeat = self._lease.heartbeat
        return check_interval if heartbeat is None else min(check_interval, heartbeat)

    def watch(self, changed: Callable[[str | None], None], stopping: threading.Event) -> None:
        """Drop what the keeper cached about a profile another host changes (shared store)."""
        threading.Thread(
            target=self._store.records.watch,
            args=(changed, stopping),
            name="wxtoken-watch",
            daemon=True,
        ).start()

    def close(self) -> None:
        self._lease.close()
