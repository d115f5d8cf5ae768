"""`wxtoken doctor`'s finding for a shared (PostgreSQL) store: reachable, at a schema this
release knows, and who leads its keepers. The location is shown without its password."""

from __future__ import annotations

from collections.abc import Iterator

from . import _local
from ._format import SCHEMA_VERSION
from .doctor import OK, PROBLEM, WARNING, Finding
from .errors import WxtokenError
from .store import TokenStore
from .store.records import FIRST_PROFILE


def check_shared_store(settings: _local.Settings, store: TokenStore) -> Iterator[Finding]:
    where = settings.store_location
    try:
        exists = store.records.exists()  # connects, and refuses a newer schema in one line
        leaders = store.records.leaders() if exists else []
    except WxtokenError as exc:
        yield Finding("store", PROBLEM, exc.message, exc.fix, None, exc.exit_code)
        return
    if not exists:
        yield Finding("store", WARNING, f"no wxtoken store in {where} yet", FIRST_PROFILE)
        return
    lead = f"keeper leading: {', '.join(leaders)}" if leaders else "no keeper leads"
    yield Finding("store", OK, f"PostgreSQL at {where}: schema {SCHEMA_VERSION}; {lead}")
