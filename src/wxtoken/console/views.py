"""What the pages show, computed from the library's own answers: `status.profile_status` (the
one state rule) for every row, the store's event log, the keeper's config and doctor's keeper
check. Nothing here decides a state; it only orders and formats what the library decided.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from .. import causes, doctor, service_apps
from .._local import Settings
from ..durations import human_left
from ..errors import clean_server_text
from ..keeper.config import KeeperConfig
from ..status import STATES, ProfileStatus, profile_status
from ..store import Event, TokenStore
from .timeline import timeline_svg

_RANK = {s: i for i, s in enumerate(STATES)}


def when(ts: float | None, now: float) -> dict[str, str]:
    """An instant as the pages show it: absolute (UTC) and relative."""
    if ts is None:
        return {"abs": "-", "rel": "", "iso": ""}
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    rel = f"in {human_left(ts - now)}" if ts >= now else f"{human_left(now - ts)} ago"
    return {
        "abs": moment.strftime("%Y-%m-%d %H:%M UTC"),
        "rel": rel,
        "iso": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def shown(value: str | None, limit: int = 300) -> str:
    """Server-supplied text made plain (Jinja escapes it for HTML as well)."""
    return "-" if value is None else clean_server_text(value, limit)


def urgency(r: ProfileStatus) -> tuple[int, float]:
    """Worst state first; within a state, the refresh token that ends soonest."""
    end = r.refresh_expires_at if r.refresh_expires_at is not None else float("inf")
    return (-_RANK[r.state], end)


def statuses(store: TokenStore, now: float) -> list[ProfileStatus]:
    rows = [profile_status(store, p, now) for p in store.list_profiles()]
    rows.sort(key=urgency)
    return rows


def row(r: ProfileStatus, now: float) -> dict[str, Any]:
    """One dashboard row."""
    described = causes.describe(r.cause, r.profile)
    probe = None
    if r.probe is not None:
        probe = {
            "verdict": r.probe.verdict,
            "cause": r.probe.cause,
            "when": when(r.probe.at, now),
        }
    return {
        "name": r.profile,
        "state": r.state,
        "reason": shown(r.reason) if r.reason else None,
        "cause": r.cause,
        "fix": described[1] if described and r.state != "ok" else None,
        "access": when(r.access_expires_at, now),
        "refresh": when(r.refresh_expires_at, now),
        "recorder_copy": r.copy.state,
        "copy_reason": shown(r.copy.reason) if r.copy.reason else None,
        "probe": probe,
        "user": shown(r.user, 120) if r.user else None,
        "org": shown(r.org_id, 60) if r.org_id else None,
    }


def dashboard(
    store: TokenStore, settings: Settings, config: KeeperConfig, now: float
) -> dict[str, Any]:
    rows = statuses(store, now)
    counts = {s: sum(1 for r in rows if r.state == s) for s in STATES}
    return {
        "rows": [row(r, now) for r in rows],
        "counts": counts,
        "timeline": timeline_svg(rows, now, config.thresholds) if rows else None,
        "keeper": keeper_state(settings),
        "now": when(now, now),
    }


def keeper_state(settings: Settings) -> dict[str, str]:
    """Doctor's keeper check: the same words `wxtoken doctor` prints."""
    finding = next(iter(doctor.check_keeper(settings)))
    return {"level": finding.level, "text": finding.detail, "fix": finding.fix or ""}


def _plain(value: object) -> str:
    """An event detail value as a person reads it: lists space-separated, objects as k=v."""
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    return str(value)


def events(found: Sequence[Event], now: float) -> list[dict[str, Any]]:
    """The event log as a table: never a secret (events hold fingerprints only)."""
    return [
        {
            "when": when(e.at, now),
            "kind": e.kind,
            "detail": ", ".join(
                f"{k}={shown(_plain(v), 160)}" for k, v in sorted(e.detail.items()) if v is not None
            ),
        }
        for e in found
    ]


def profile_page(store: TokenStore, name: str, now: float, siblings: list[str]) -> dict[str, Any]:
    p = store.get_profile(name)
    r = profile_status(store, p, now)
    granted = set(r.scopes)
    return {
        "row": row(r, now),
        "profile": {
            "name": p.name,
            "kind": p.kind,
            "client_id": p.client_id,
            "redirect_uri": p.redirect_uri or "-",
            "base_url": p.base_url,
            **service_apps.settings_shown(p.extra),
        },
        "scopes": [
            {"scope": s, "granted": s in granted if r.access_expires_at is not None else None}
            for s in p.scopes
        ],
        "extra_scopes": sorted(granted - set(p.scopes)),
        "chain": list(r.chain),
        "horizon": {
            "profile": r.horizon_profile,
            "when": when(r.horizon_at, now),
        }
        if r.chain
        else None,
        "siblings": siblings,
        "has_tokens": r.access_expires_at is not None,
        "is_service_app": service_apps.is_service_app(p),
        "events": events(store.events(name, limit=50), now),
    }


def channels(config: KeeperConfig) -> list[str]:
    """The alert channels without their secret parts (each channel's own `describe`)."""
    return [c.describe() for c in config.channels]
