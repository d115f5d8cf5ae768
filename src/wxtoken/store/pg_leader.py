"""Keeper leadership on the shared store: a session advisory lock on a dedicated connection.

Why a session lock and not per-profile leases: PostgreSQL ends a session's locks the moment its
connection ends, so a leader killed with `kill -9` (its socket closed by the kernel) frees the
lead at once, and one whose network was cut frees it when the server's TCP keepalive gives up
(set here per session: KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT seconds), and one
whose process hangs with its socket open frees it when the server ends the silent session
(SILENCE_MS). No lease times or clocks to agree on; the refreshes themselves are fenced by the
per-profile lock and the stored generation, so a leader that has not yet noticed it was cut off
cannot refresh a grant twice. This connection must not go through PgBouncer in transaction
mode: the lock belongs to the server session, which transaction pooling hands to others.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from .pg_pool import KEEPALIVE_COUNT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, connect
from .postgres import LEADER_CLASS, advisory_key

# A leader confirms its lead at least every HEARTBEAT seconds (its pass loop does, so a keeper
# whose loop hangs stops confirming), and the server ends a leader session silent for
# SILENCE_MS (idle_session_timeout), freeing the lead for a standby.
HEARTBEAT = 3.0
SILENCE_MS = 10_000
# idle_session_timeout came with PostgreSQL 14; before it, a hung leader keeps the lead until
# its process or host dies (the README says so).
IDLE_SESSION_SINCE = 140000

_LEADERS = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.classid = %s::oid AND l.objsubid = 2 AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "{group} ORDER BY a.backend_start"
)


def leaders(conn: psycopg.Connection[Any], group: str | None = None) -> list[str]:
    """Who leads (application names), for one group of keepers or all of them."""
    args: list[int] = [LEADER_CLASS]
    where = ""
    if group is not None:
        args.append(advisory_key(group) & 0xFFFFFFFF)  # pg_locks shows the key as an oid
        where = "AND l.objid = %s::oid"
    return [str(r[0]) for r in conn.execute(_LEADERS.format(group=where), args).fetchall()]


class PgLeadership:
    """Leads the keepers of `group` while this object's connection holds the group's lock."""

    heartbeat: float | None = HEARTBEAT

    def __init__(self, url: str, group: str, identity: str):
        self._url = url
        self._group = group
        self._key = advisory_key(group)
        self.identity = identity
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False

    def lead(self) -> bool:
        """Whether this keeper leads now: takes the lead if it is free, and checks that a lead
        held is still held (its connection alive). Never raises for a lost database."""
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._held = False
                self._conn = connect(self._url, self.identity)
                # The server drops a silent peer (and its lock) after these many seconds.
                self._conn.execute(
                    f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE}; "
                    f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL}; "
                    f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}"
                )
                if self._conn.info.server_version >= IDLE_SESSION_SINCE:
                    self._conn.execute(f"SET idle_session_timeout = {SILENCE_MS}")
            if self._held:
                self._conn.execute("SELECT 1")
            else:
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LEADER_CLASS, self._key)
                ).fetchone()
                self._held = bool(row and row[0])
        except psycopg.Error:
            self._drop()
        return self._held

    def leader(self) -> str | None:
        """The identity of the keeper leading this group now, if any."""
        if self._held:
            return self.identity
        try:
            if self._conn is None or self._conn.broken:
                return None
            found = leaders(self._conn, self._group)
        except psycopg.Error:
            return None
        return found[0] if found else None

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop()  # closing the session releases the lock
