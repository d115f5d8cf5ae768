"""What a PostgreSQL failure means to an admin: one line and a fix, never the server's text.

The server's words may quote a statement (never our parameters, but why risk it), and the
store's URL is shown without its password.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pgerrors

from .._local import ENV_STORE, ENV_STORE_POOLER
from ..errors import StorageError


def storage_error(exc: psycopg.Error, doing: str, location: str, *, pooled: bool) -> StorageError:
    sqlstate = getattr(exc, "sqlstate", None) or "connection"
    if isinstance(exc, psycopg.OperationalError) and sqlstate == "connection":
        return StorageError(
            f"the store could not {doing}: the database at {location} cannot be "
            "reached or dropped the connection; nothing was changed",
            fix="check that PostgreSQL runs and accepts this host (pg_isready -h HOST), then retry",
        )
    if isinstance(exc, pgerrors.InvalidSqlStatementName) and not pooled:
        return StorageError(
            f"the store could not {doing}: a statement prepared on one server session was "
            f"gone on the next, as behind PgBouncer in transaction mode ({location})",
            fix=f"set {ENV_STORE_POOLER}=transaction where {ENV_STORE} names a pooler",
        )
    return StorageError(
        f"the store could not {doing}: PostgreSQL answered {sqlstate} "
        f"({type(exc).__name__}) at {location}; nothing was changed",
        fix="retry; if it repeats, ask the database administrator about that error code",
    )
