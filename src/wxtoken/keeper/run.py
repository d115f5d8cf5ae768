"""Keeper: wake when a profile is due (at least every `check_interval`), refresh it, alert,
serve; stop cleanly.

Each pass re-reads the wall clock and the store, then sleeps until the earliest time a profile
needs the keeper, but never longer than `check_interval`, so a suspend, resume or clock jump is
noticed within one interval and a short-lived token is still refreshed in time. A finished
refresh ends the sleep early, since it moves its profile's next due time. Refreshes run on a
thread pool, one per profile at a time, through the same TokenManager and the same per-profile
lock as the CLI, so the keeper and `wxtoken token` in a script never refresh one grant twice; a
scheduled refresh is conditional on the generation it saw (`Scheduled`), so it never repeats a
refresh another process just made.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any

from .. import causes
from .._local import Settings
from ..errors import LoginRequired, OrgMismatch, StorageError, WebexUnavailable, WxtokenError
from ..manager import resolve_profile_name
from ..reasons import Scheduled
from ..results import RefreshResult
from ..store import STATUS_LOGIN_REQUIRED, Event, TokenRecord, TokenStore
from ..token import iso
from . import metrics
from .alerts import Dispatcher
from .config import KeeperConfig
from .leading import Lead
from .managers import MANAGER_CACHE_SIZE, Managers, RefreshAbandoned
from .metrics import failure_reason
from .schedule import (
    MIN_WAKE,
    ORG_MISMATCH,
    Alert,
    Backoff,
    acts_at,
    copy_stale_alert,
    copy_stale_key,
    degraded_alert,
    expiry_alert,
    failures_alert,
    login_required_alert,
    next_attempt,
    next_wake,
    older_secret_alert,
    org_mismatch_alerts,
    probe_due_at,
    recovery_alert,
    refresh_due_at,
    rotation_alert,
)
from .service import error_answer

if TYPE_CHECKING:
    from ..client import WebexClient
    from ..profile import Profile

# org_mismatch events read after a failed refresh: only the newest, since each one is looked at
# right after the failure that recorded it; older ones were alerted then.
ORG_EVENTS_READ = 20


class Keeper:
    def __init__(
        self,
        store: TokenStore,
        config: KeeperConfig,
        *,
        profiles: tuple[str, ...] | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
        log: IO[str] = sys.stderr,
        client_for: Callable[[Profile], WebexClient] | None = None,
        dispatcher: Dispatcher | None = None,
        manager_cache: int = MANAGER_CACHE_SIZE,
    ):
        self.store = store
        self.config = config
        self.sched = config.schedule
        self._clock = clock
        self._log = log
        self._wanted = profiles if profiles is not None else config.profiles
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self.managers = Managers(
            store,
            settings if settings is not None else Settings(),
            clock=clock,
            stopping=self.stopping,
            client_for=client_for,
            size=manager_cache,
        )
        self.alerts = dispatcher or Dispatcher(
            store, config, clock=clock, log=log, settings=settings
        )
        # Several keepers may share a store: only the leader schedules and alerts.
        self.lead = Lead(store, self._wanted, log, self._took_lead)
        self._pool = ThreadPoolExecutor(self.sched.workers, thread_name_prefix="wxtoken-refresh")
        # Refresh workers, the pass loop, the token socket and alert delivery use it at once.
        store.records.reserve(self.sched.workers + 4)
        self._inflight: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._backoff: dict[str, Backoff] = {}
        self._records: dict[str, TokenRecord | None] = {}
        self.stats: dict[str, metrics.ProfileStats] = {}
        self._rng = random.Random()
        self._missing: set[str] = set()  # kept profiles found missing, reported once each
        self.next_act: list[float] = []  # when each idle profile next needs the keeper
        self.heartbeat = 0.0  # monotonic time of the last completed pass
        self.started = clock()  # a grant never probed is first probed one interval after this
        self.passes = 0

    # --- profiles --------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The profiles to keep, checked at start: a typo is a usage error, not a silent gap."""
        if self._wanted is None:
            return [p.name for p in self.store.list_profiles()]
        for name in self._wanted:
            self.store.get_profile(name)
        return list(self._wanted)

    def _current(self) -> dict[str, Profile]:
        """The kept profiles as the store has them now; one read however many there are."""
        listed = {p.name: p for p in self.store.list_profiles()}
        if self._wanted is None:
            return listed
        self._missing.difference_update(listed)  # added back: if it goes again, say so again
        for name in self._wanted:
            if name not in listed and name not in self._missing:
                self._missing.add(name)
                self._log.write(f"wxtoken keep: profile {name!r} was removed; not keeping it\n")
        return {n: listed[n] for n in self._wanted if n in listed}

    @property
    def cached_profiles(self) -> tuple[str, ...]:
        return self.managers.cached

    # --- one pass --------------------------------------------------------------------------

    def _took_lead(self) -> None:
        # Another keeper may have alerted while this one stood by: read what was sent.
        self.alerts.reload()
        self.store.append_event(None, "keeper_leader", {"keeper": self.lead.identity})

    def tick(self) -> None:
        leading = self.lead.check()
        now = self._clock()
        current = self._current()
        records = self.store.all_token_records()
        # What is gone is forgotten: its metrics, counters, backoff and cached manager.
        self._records = {name: records.get(name) for name in current}
        self.stats = {name: self.stats.get(name) or metrics.ProfileStats() for name in current}
        with self._lock:
            self._backoff = {n: b for n, b in self._backoff.items() if n in current}
        self.managers.forget(current)
        if not leading:  # standing by: metrics and the socket from the store, no actions
            self.next_act = []
            self.heartbeat = time.monotonic()
            self.passes += 1
            return
        acts: list[float] = []
        for name, record in self._records.items():
            when = self._visit(name, record, now)
            if when is not None:
                acts.append(when)
        self.next_act = acts
        self.heartbeat = time.monotonic()
        self.passes += 1

    def _visit(self, name: str, record: TokenRecord | None, now: float) -> float | None:
        """Alert and start a refresh or a probe as needed; when the profile next needs the
        keeper, if ever (None: it needs a person, or work on it is under way).

        A refresh token past the expiry Webex stated is still presented: Webex, not a stale
        local figure, decides that a grant is dead (invalid_grant then marks it)."""
        if record is None or record.status == STATUS_LOGIN_REQUIRED:
            self._alert_once(login_required_alert(name, record))
            return None
        alert, keys = expiry_alert(record, now, self.config.thresholds, self.alerts.keys_sent)
        if alert is not None:
            self.alerts.submit(alert)
            self.alerts.settle(keys, alert)
        if record.copy.state == "stale":
            self._alert_once(copy_stale_alert(name, record))
        degraded = degraded_alert(name, record)
        if degraded is not None:
            self._alert_once(degraded)
        due = refresh_due_at(record, self.sched)
        probe_at = probe_due_at(record, self.sched, self.started)
        with self._lock:
            if name in self._inflight:
                return None
            act = acts_at(due, self._backoff.get(name))
            if now >= act:
                self._inflight[name] = self._pool.submit(self._refresh, name, record)
                return None
            if probe_at is not None and now >= probe_at:
                self._inflight[name] = self._pool.submit(self._probe, name)
                return None
        return act if probe_at is None else min(act, probe_at)

    def _probe(self, name: str) -> None:
        """Ask Webex whether the grant is alive; the manager records what it said (a dead grant
        becomes login_required with its cause, which the next pass alerts)."""
        stats = self.stats.setdefault(name, metrics.ProfileStats())
        try:
            stats.last_probe = self.managers.get(name).probe().verdict
        except WxtokenError as exc:
            self._log.write(f"wxtoken keep: {name}: probe failed ({exc.message})\n")
        except Exception as exc:  # a bug must cost one profile one probe, not the keeper
            self._log.write(f"wxtoken keep: {name}: probe: unexpected {type(exc).__name__}\n")
        finally:
            with self._lock:
                self._inflight.pop(name, None)
            self._wake.set()

    def _alert_once(self, alert: Alert) -> None:
        if alert.key not in self.alerts.keys_sent:
            self.alerts.submit(alert)

    def _refresh(self, name: str, record: TokenRecord) -> None:
        stats = self.stats.setdefault(name, metrics.ProfileStats())
        started = self._clock()
        try:
            result = self.managers.get(name).refresh(Scheduled(record.generation))
        except RefreshAbandoned:
            self._log.write(f"wxtoken keep: {name}: refresh abandoned; the keeper is stopping\n")
        except LoginRequired:
            new = self.store.token_record(name)
            stats.failed("invalid_grant")
            self._alert_once(login_required_alert(name, new or record))
            self._clear_backoff(name)
        except WxtokenError as exc:
            mismatches = self._alert_org_mismatches(name, record)
            stats.failed(failure_reason(exc, mismatches, started))
            self._failed(name, record, exc)
        except Exception as exc:  # a bug must cost one profile one pass, not the keeper
            stats.failed("internal")
            self._log.write(f"wxtoken keep: {name}: unexpected {type(exc).__name__}\n")
            self._failed(name, record, WxtokenError(type(exc).__name__))
        else:
            if result.refreshed:
                self._refreshed(name, stats, result)
        finally:
            with self._lock:
                self._inflight.pop(name, None)
            self._wake.set()  # its next due time moved: let the loop look again

    def _refreshed(self, name: str, stats: metrics.ProfileStats, result: RefreshResult) -> None:
        stats.refreshes += 1
        stats.last_success = self._clock()
        new = result.record
        self._log.write(
            f"wxtoken keep: refreshed {name}; access token until "
            f"{iso(result.token.access_expires_at)}\n"
        )
        if result.older_secret and new is not None:
            self._log.write(f"wxtoken keep: {name}: {causes.OLDER_SECRET.text}\n")
            self.alerts.submit(older_secret_alert(name, new, self.store.secrets_held(name)[1]))
        if result.rotated and new is not None:
            last_export = dict(result.last_export) if result.last_export else None
            rotation = rotation_alert(name, new, last_export)
            self.alerts.submit(rotation)
            if new.copy.state == "stale":  # the rotation alert already says the copy is stale
                self.alerts.settle([copy_stale_key(name, new)], rotation)
        with self._lock:
            b = self._backoff.pop(name, None)
        if b is not None and b.alerted and new is not None:
            self.alerts.submit(recovery_alert(name, new, f"{b.failures} failures"))

    def _alert_org_mismatches(self, name: str, record: TokenRecord) -> list[Event]:
        """Alert on the org changes refreshes recorded against this grant; returns the events.

        A refresh that returns a token for another org is refused and recorded as an
        `org_mismatch` event. The event, not the exception's class, is what is alerted on, so an
        occurrence met by a script's `wxtoken token` is alerted (once) too.
        """
        events = self.store.events(name, (ORG_MISMATCH,), limit=ORG_EVENTS_READ)
        for alert in org_mismatch_alerts(name, record, events, self.alerts.keys_sent):
            self.alerts.submit(alert)
        return events

    def _clear_backoff(self, name: str) -> None:
        with self._lock:
            self._backoff.pop(name, None)

    def _failed(self, name: str, record: TokenRecord, exc: WxtokenError) -> None:
        now = self._clock()
        with self._lock:
            b = self._backoff.setdefault(name, Backoff())
            b.failures += 1
            b.last_error = exc.message
            retry_after = exc.retry_after if isinstance(exc, WebexUnavailable) else None
            b.next_attempt_at = next_attempt(b, now, self.sched, retry_after, self._rng)
            failures = b.failures
        self._log.write(
            f"wxtoken keep: {name}: refresh failed ({exc.message}); retry at "
            f"{iso(b.next_attempt_at)}\n"
        )
        # A cause Webex named (a token limit) will not pass by retrying: alert at once. Another
        # org's answer has its own alert, from the event the refresh recorded.
        cause = None if isinstance(exc, OrgMismatch) else causes.told_by(exc)
        if failures == (1 if cause else self.config.failures):
            b.alerted = True
            self.alerts.submit(failures_alert(name, record, b, now, cause))

    def drain(self, timeout: float = 120.0) -> None:
        """Wait for in-flight refreshes (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = list(self._inflight.values())
            if not pending:
                return
            for f in pending:
                try:
                    f.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # results are handled inside _refresh; keep draining
                    self._log.write(f"wxtoken keep: refresh task ended with {type(exc).__name__}\n")

    # --- serving tokens --------------------------------------------------------------------

    def answer(self, profile: str | None, min_valid: float) -> dict[str, Any]:
        try:
            name = resolve_profile_name(self.store, profile)
            if self._wanted is not None and name not in self._wanted:
                return {
                    "ok": False,
                    "exit_code": 2,
                    "error": f"the keeper does not manage profile {name!r}; fix: run "
                    "`wxtoken token` with the store's key, or add it to the keeper",
                }
            token = self.managers.get(name).token(min_valid)
        except WxtokenError as exc:
            return error_answer(exc)
        except Exception as exc:  # a bug answers one request with an error, nothing more
            self._log.write(f"wxtoken keep: token socket: unexpected {type(exc).__name__}\n")
            return error_answer(WxtokenError("the keeper failed to answer (internal error)"))
        return {
            "ok": True,
            "access_token": token.access_token,
            "access_expires_at": token.access_expires_at,
        }

    # --- health and metrics ----------------------------------------------------------------

    def metrics(self) -> bytes:
        lead = metrics.Lead(self.lead.identity, self.lead.leading, self.lead.leader())
        return metrics.render(self._clock(), self._records, self.stats, self.passes, lead)

    def healthy(self) -> bool:
        return self.passes > 0 and (
            time.monotonic() - self.heartbeat < 3 * self.sched.check_interval + 30
        )

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        """Pass after pass until `stop()`."""
        self.alerts.start()
        self.lead.watch(self.managers.drop, self.stopping)
        while not self.stopping.is_set():
            self._wake.clear()  # before the pass: a refresh finishing during it still counts
            try:
                self.tick()
            except StorageError as exc:
                self._log.write(f"wxtoken keep: store error: {exc.one_line()}\n")
            interval = self.lead.interval(self.sched.check_interval)
            sleep = next_wake(self._clock(), self.next_act, interval)
            # The first part of the sleep is not cut short: a burst of finished refreshes then
            # costs one pass, and passes never crowd out the refreshes themselves.
            floor = min(MIN_WAKE, interval)
            if not self.stopping.wait(floor):
                self._wake.wait(sleep - floor)

    def stop(self) -> None:
        """Ask `run` to return (a signal handler calls this); `close` then waits for work."""
        self.stopping.set()
        self._wake.set()

    def close(self) -> None:
        self.stopping.set()  # retries in flight give up; refreshes not yet started never start
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.alerts.flush(10)
        self.alerts.stop()
        self.lead.close()  # hands the lead over at once
        self.managers.close()
