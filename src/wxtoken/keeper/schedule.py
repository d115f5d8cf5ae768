"""When to refresh, when to wake, when to retry, and what to alert: pure decisions from records
and the clock.

No I/O here, so every rule can be tested with a fixed `now`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass

from .. import causes
from ..errors import clean_server_text
from ..store import STATUS_LOGIN_REQUIRED, Event, TokenRecord
from ..token import human_left, iso
from .config import Schedule

# The keeper's finest resolution: it sleeps at least this long between passes (unless the check
# interval is shorter still), so a burst of finished refreshes, each of which may bring the next
# due time closer, costs one pass, and passes over thousands of profiles never run back to back.
MIN_WAKE = 1.0


def jitter_offset(profile: str, jitter: float, lifetime: float) -> float:
    """A stable per-profile offset in [0, jitter), never more than a tenth of the lifetime, so
    thousands of profiles minted at once do not all refresh in the same second."""
    u = int(hashlib.sha256(profile.encode()).hexdigest()[:8], 16) / 2**32
    return u * min(jitter, 0.1 * max(lifetime, 0.0))


def refresh_due_at(record: TokenRecord, sched: Schedule) -> float:
    """The moment this profile's access token should be refreshed.

    Due when `refresh_fraction` of the access token's life is left, or when it is `max_age`
    old (so a sliding refresh token is used often enough never to lapse), minus a jitter; never
    earlier than `min_interval` after the last refresh (scaled down for very short lifetimes,
    so a token that lives 20 s is still refreshed in time); never later than just before expiry.
    """
    lifetime = max(record.access_expires_at - record.obtained_at, 1.0)
    by_fraction = record.access_expires_at - sched.refresh_fraction * lifetime
    by_age = record.obtained_at + sched.max_age
    due = min(by_fraction, by_age) - jitter_offset(record.profile, sched.jitter, lifetime)
    due = min(due, record.access_expires_at - min(60.0, 0.1 * lifetime))
    return max(due, record.obtained_at + min(sched.min_interval, 0.5 * lifetime))


def probe_due_at(record: TokenRecord, sched: Schedule, started: float) -> float | None:
    """When to ask Webex next whether the grant is alive; None when probes are off.

    Every `probe_interval` after the last probe (or after the keeper started), minus a stable
    per-profile jitter, so thousands of grants are not probed in the same second. A probe never
    refreshes and never moves the refresh schedule.
    """
    if sched.probe_interval <= 0:
        return None
    last = record.probe.at if record.probe is not None else started
    jitter = jitter_offset(record.profile + ":probe", sched.jitter, sched.probe_interval)
    return last + sched.probe_interval - jitter


@dataclass
class Backoff:
    failures: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    alerted: bool = False  # a failures alert went out, so a success is announced as recovery


def acts_at(due: float, backoff: Backoff | None) -> float:
    """When the keeper next has to refresh a profile due at `due`: then, or after a failure, not
    before its retry time."""
    if backoff is not None and backoff.next_attempt_at > due:
        return backoff.next_attempt_at
    return due


def next_wake(now: float, acts: Iterable[float], check_interval: float) -> float:
    """Seconds to sleep until the next pass: until the earliest time a profile needs the keeper,
    but never longer than `check_interval` (each pass re-reads the wall clock, so a suspend or
    a clock jump is noticed within one interval) and, unless the interval is shorter still,
    never less than MIN_WAKE."""
    earliest = min(acts, default=now + check_interval)
    return min(check_interval, max(MIN_WAKE, earliest - now))


def next_attempt(
    b: Backoff, now: float, sched: Schedule, retry_after: float | None, rng: random.Random
) -> float:
    """Capped exponential backoff with jitter; Webex's Retry-After is a floor (capped at a day)."""
    ceiling = min(sched.retry_cap, sched.retry_base * 2 ** max(b.failures - 1, 0))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 86400.0))
    return now + delay


@dataclass(frozen=True)
class Alert:
    key: str  # deduplication key: the same key is delivered once per channel, ever
    kind: str  # expiry | login_required | rotation | copy_stale | degraded | failures |
    # recovery | org_mismatch | older_secret
    profile: str
    org_id: str | None
    text: str
    fix: str | None

    def as_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "profile": self.profile,
            "org_id": self.org_id,
            "text": self.text,
            "fix": self.fix,
            "key": self.key,
        }


def _who(profile: str, org: str | None) -> str:
    return f"profile '{profile}'" + (f" (org {org})" if org else "")


def expiry_alert(
    record: TokenRecord, now: float, thresholds: tuple[float, ...], sent: set[str]
) -> tuple[Alert | None, list[str]]:
    """The alert for the tightest newly crossed threshold, and every key it settles.

    Keys include the refresh token's expiry, so a horizon that moves (a sliding expiry renewed)
    starts a new crossing, while a restart of the keeper never repeats one.
    """
    exp = record.refresh_expires_at
    if exp is None or record.status == STATUS_LOGIN_REQUIRED:
        return None, []
    left = exp - now
    if left <= 0:
        return None, []
    crossed = [t for t in thresholds if left <= t]
    keys = {t: f"expiry:{record.profile}:{int(exp)}:{int(t)}" for t in crossed}
    new = [t for t in crossed if keys[t] not in sent]
    if not new:
        return None, []
    fix = f"wxtoken login -p {record.profile} && wxtoken export -p {record.profile}"
    fixed = (
        " Its expiry is fixed: refreshing does not extend it, so only a new sign-in does."
        if record.trend.state == "fixed"
        else ""
    )
    text = (
        f"wxtoken: {_who(record.profile, record.identity.org_id)}: the refresh token expires "
        f"in {human_left(left)}, on {iso(exp)}.{fixed} When it does, the recorder stops "
        "getting tokens. Sign in again before then and hand the new refresh token to the "
        "recorder."
    )
    alert = Alert(keys[min(new)], "expiry", record.profile, record.identity.org_id, text, fix)
    return alert, [keys[t] for t in new]


def login_required_alert(profile: str, record: TokenRecord | None) -> Alert:
    org = record.identity.org_id if record else None
    reason = (record.status_reason if record else None) or "no tokens stored"
    generation = record.generation if record else 0
    described = causes.describe(record.cause if record else None, profile)
    fix = (
        described[1] if described else f"wxtoken login -p {profile} && wxtoken export -p {profile}"
    )
    text = (
        f"wxtoken: {_who(profile, org)} needs a new sign-in: "
        f"{clean_server_text(reason, 300)}. Until then the recorder gets no new tokens."
    )
    return Alert(
        f"login_required:{profile}:{generation}", "login_required", profile, org, text, fix
    )


def copy_stale_key(profile: str, record: TokenRecord) -> str:
    return f"copy_stale:{profile}:{int(record.copy.stale_since or 0)}"


def copy_stale_alert(profile: str, record: TokenRecord) -> Alert:
    """The recorder still holds a refresh token the store no longer does."""
    text = (
        f"wxtoken: {_who(profile, record.identity.org_id)}: the recorder's copy of the refresh "
        f"token is stale since {iso(record.copy.stale_since)} ({record.copy.reason}). Update "
        "the recorder's data source with the current one."
    )
    return Alert(
        copy_stale_key(profile, record),
        "copy_stale",
        profile,
        record.identity.org_id,
        text,
        f"wxtoken export -p {profile}",
    )


def degraded_alert(profile: str, record: TokenRecord) -> Alert | None:
    """A probe found the grant alive but short of what it needs (a role, a scope, the org)."""
    probe = record.probe
    if probe is None or probe.verdict != "degraded":
        return None
    described = causes.describe(probe.cause, profile)
    what, fix = described if described else ("Webex refused part of what the grant needs", None)
    text = (
        f"wxtoken: {_who(profile, record.identity.org_id)}: {what} (found by a probe at "
        f"{iso(probe.at)}; {clean_server_text(probe.detail or '', 160)})."
    )
    key = f"degraded:{profile}:{probe.cause}:{record.generation}"
    return Alert(key, "degraded", profile, record.identity.org_id, text, fix)


def rotation_alert(
    profile: str, record: TokenRecord, last_export: dict[str, object] | None
) -> Alert:
    if last_export:
        copy = (
            f"The copy exported {last_export.get('at')} as {last_export.get('format')} is "
            "now stale: update the recorder's data source."
        )
    else:
        copy = "No export was recorded; if a recorder holds the old token, update it."
    text = (
        f"wxtoken: {_who(profile, record.identity.org_id)}: Webex issued a new refresh "
        f"token (stored). {copy}"
    )
    return Alert(
        f"rotation:{profile}:{record.generation}",
        "rotation",
        profile,
        record.identity.org_id,
        text,
        f"wxtoken export -p {profile}",
    )


def older_secret_alert(profile: str, record: TokenRecord, secret_added_at: float | None) -> Alert:
    """A refresh worked only with the older of two client secrets: once per secret added."""
    o = causes.OLDER_SECRET
    text = (
        f"wxtoken: {_who(profile, record.identity.org_id)}: {o.text}. Refreshing works while "
        "Webex still accepts the older one."
    )
    return Alert(
        f"older_secret:{profile}:{int(secret_added_at or 0)}",
        "older_secret",
        profile,
        record.identity.org_id,
        text,
        o.fix.format(profile=profile),
    )


def failures_alert(
    profile: str, record: TokenRecord | None, b: Backoff, now: float, cause: str | None = None
) -> Alert:
    """Refreshes keep failing while the grant lives. With a `cause` Webex named (a token limit),
    the text and the fix are the cause's: retrying alone will not end it."""
    org = record.identity.org_id if record else None
    until = ""
    if record is not None:
        left = record.access_expires_at - now
        # human_left says "expired 6s ago" by itself once the token is past its expiry.
        until = f" The access token {'expires in ' if left > 0 else ''}{human_left(left)}."
    described = causes.describe(cause, profile)
    why = f": {described[0]}" if described else ""
    text = (
        f"wxtoken: {_who(profile, org)}: {b.failures} refresh attempts failed in a row{why} "
        f"(last: {clean_server_text(b.last_error or 'unknown', 160)}). wxtoken keeps "
        f"retrying.{until}"
    )
    gen = record.generation if record else 0
    return Alert(
        f"failures:{profile}:{gen}",
        "failures",
        profile,
        org,
        text,
        described[1]
        if described
        else f"wxtoken refresh -p {profile}   # shows the error; check network and Webex",
    )


def recovery_alert(profile: str, record: TokenRecord, after: str) -> Alert:
    text = (
        f"wxtoken: {_who(profile, record.identity.org_id)} recovered: the refresh "
        f"succeeded after {after}."
    )
    return Alert(
        f"recovery:{profile}:{record.generation}",
        "recovery",
        profile,
        record.identity.org_id,
        text,
        None,
    )


ORG_MISMATCH = "org_mismatch"  # the event a refresh records when Webex answers for another org


def org_mismatch_alerts(
    profile: str, record: TokenRecord, events: Iterable[Event], sent: set[str]
) -> list[Alert]:
    """An alert for each new `org_mismatch` occurrence recorded against the stored grant.

    An occurrence is one grant (its generation) meeting one other org: retries that meet the same
    org again are the same occurrence and alert nothing more, while a grant signed in anew, or a
    user moved on to yet another org, alerts again. Events older than the stored grant belong to
    a grant that was replaced since.
    """
    alerts: dict[str, Alert] = {}
    for event in events:
        if event.kind != ORG_MISMATCH or event.at < record.obtained_at:
            continue
        alert = org_mismatch_alert(profile, record, event)
        if alert.key not in sent:
            alerts.setdefault(alert.key, alert)
    return list(alerts.values())


def org_mismatch_alert(profile: str, record: TokenRecord, event: Event) -> Alert:
    expected = _org(event.detail.get("expected_org_id")) or record.identity.org_id
    returned = _org(event.detail.get("returned_org_id"))
    text = (
        f"wxtoken: {_who(profile, expected)}: a refresh returned a token for "
        f"{f'org {returned}' if returned else 'another org'}, so it was not stored. The stored "
        "grant is kept and retried with backoff; the recorder's access token stops working when "
        "it expires. The signed-in user may have been moved to another org."
    )
    return Alert(
        f"org_mismatch:{profile}:{record.generation}:{returned or 'unknown'}",
        ORG_MISMATCH,
        profile,
        expected,
        text,
        f"wxtoken login -p {profile} (signed in as an admin of "
        f"{f'org {expected}' if expected else 'the right org'}) && wxtoken export -p {profile}",
    )


def _org(value: object) -> str | None:
    # Org ids come from Webex's token suffix: shown, so cleaned like any server-supplied text.
    if not isinstance(value, str):
        return None
    return clean_server_text(value, 64) or None
