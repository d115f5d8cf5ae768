"""The keeper's Prometheus exposition: per-profile expiry, state, refreshes and failures.

Rendered from what the keeper saw on its last pass, so a profile removed from the store leaves
the output at the next pass instead of being exported, frozen, forever.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import StorageError, WebexUnavailable, WxtokenError
from ..status import STATES, classify
from ..store import Event, TokenRecord
from .schedule import ORG_MISMATCH

VERDICTS = ("alive", "degraded", "dead", "unknown")
# The recorder's copy of the refresh token (store.RecorderCopy.state): never handed over, what
# the store holds, or replaced since the hand-off (the recorder's next refresh will fail).
COPY_STATES = ("none", "current", "stale")


@dataclass
class ProfileStats:
    refreshes: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    last_success: float | None = None
    last_probe: str | None = None

    def failed(self, reason: str) -> None:
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1


@dataclass(frozen=True)
class Lead:
    """This keeper (`me`), whether it leads the keepers sharing its store, and who does."""

    me: str
    leading: bool
    leader: str | None


def render(
    now: float,
    records: Mapping[str, TokenRecord | None],
    stats: Mapping[str, ProfileStats],
    passes: int,
    lead: Lead | None = None,
) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    class Collector:
        def collect(self) -> Iterator[Any]:
            yield from _families(now, records, stats, passes)
            if lead is not None:
                yield from _lead_families(lead)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return bytes(generate_latest(registry))


def _families(
    now: float,
    records: Mapping[str, TokenRecord | None],
    stats: Mapping[str, ProfileStats],
    passes: int,
) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    access = GaugeMetricFamily(
        "wxtoken_access_token_expiry_seconds",
        "Seconds until the access token expires",
        labels=["profile"],
    )
    refresh = GaugeMetricFamily(
        "wxtoken_refresh_token_expiry_seconds",
        "Seconds until the refresh token expires",
        labels=["profile"],
    )
    state = GaugeMetricFamily(
        "wxtoken_profile_state", "1 for the profile's current state", labels=["profile", "state"]
    )
    refreshes = CounterMetricFamily(
        "wxtoken_refreshes", "Refreshes made by this keeper", labels=["profile"]
    )
    failures = CounterMetricFamily(
        "wxtoken_refresh_failures",
        "Failed refresh attempts by reason",
        labels=["profile", "reason"],
    )
    success = GaugeMetricFamily(
        "wxtoken_last_refresh_success_timestamp_seconds",
        "Unix time of the last successful refresh",
        labels=["profile"],
    )
    probe = GaugeMetricFamily(
        "wxtoken_probe_verdict",
        "1 for the verdict of the last probe (alive, degraded, dead, unknown)",
        labels=["profile", "verdict"],
    )
    probed = GaugeMetricFamily(
        "wxtoken_last_probe_timestamp_seconds",
        "Unix time of the last probe",
        labels=["profile"],
    )
    copy = GaugeMetricFamily(
        "wxtoken_recorder_copy_state",
        "1 for the state of the recorder's copy of the refresh token (none, current, stale)",
        labels=["profile", "state"],
    )
    for name, record in records.items():
        current = classify(record, now)[0]
        for s in STATES:
            state.add_metric([name, s], 1.0 if s == current else 0.0)
        if record is not None:
            access.add_metric([name], record.access_expires_at - now)
            if record.refresh_expires_at is not None:
                refresh.add_metric([name], record.refresh_expires_at - now)
        st = stats.get(name, ProfileStats())
        refreshes.add_metric([name], st.refreshes)
        for reason, n in st.failures_by_reason.items():
            failures.add_metric([name, reason], n)
        last = st.last_success or (record.last_success_at if record else None)
        if last is not None:
            success.add_metric([name], last)
        if record is not None and record.probe is not None:
            for verdict in VERDICTS:
                probe.add_metric([name, verdict], 1.0 if verdict == record.probe.verdict else 0.0)
            probed.add_metric([name], record.probe.at)
        if record is not None:
            for s in COPY_STATES:
                copy.add_metric([name, s], 1.0 if s == record.copy.state else 0.0)
    up = GaugeMetricFamily("wxtoken_keeper_passes", "Scheduler passes completed")
    up.add_metric([], passes)
    yield from (access, refresh, state, refreshes, failures, success, probe, probed, copy, up)


def _lead_families(lead: Lead) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    leading = GaugeMetricFamily(
        "wxtoken_keeper_leading",
        "1 if this keeper leads (schedules, probes and alerts), 0 if it stands by",
        labels=["keeper"],
    )
    leading.add_metric([lead.me], 1.0 if lead.leading else 0.0)
    leader = GaugeMetricFamily(
        "wxtoken_keeper_leader_info",
        "The keeper leading those sharing this store",
        labels=["keeper"],
    )
    if lead.leader is not None:
        leader.add_metric([lead.leader], 1.0)
    yield from (leading, leader)


def failure_reason(exc: WxtokenError, org_mismatches: list[Event], started: float) -> str:
    """The `reason` label of a failed refresh in wxtoken_refresh_failures_total."""
    if any(e.at >= started for e in org_mismatches):
        return ORG_MISMATCH
    if isinstance(exc, StorageError):
        return "storage"
    return "unavailable" if isinstance(exc, WebexUnavailable) else "error"
