"""How results look to a person: text lines, the status table, exports. Nothing else prints.

Every string that came from a server (names, emails, org ids, error texts) goes through
`shown()`, which strips control characters and escape sequences, so a hostile display name can
neither repaint the terminal nor forge a line; the status table is built from plain `Text`
cells, so rich never interprets such a string as markup.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping, Sequence

from .. import causes, service_apps
from ..durations import human_left
from ..errors import clean_server_text
from ..profile import DEFAULT_BASE_URL, Profile
from ..results import HandOff, LoginResult, RefreshResult, VerifyResult
from ..status import ProfileStatus
from ..token import iso

EXPORT_FORMATS = ("refresh-token", "json", "env", "verint")
# Verint's Webex data sources refresh the token when the adapter starts; a refresh token
# unused for longer than this lapses (Verint's own documentation says 60 days).
VERINT_RUN_EVERY_DAYS = 60


def shown(value: str | None, limit: int = 200, empty: str = "-") -> str:
    """A server-supplied value made safe for one terminal line."""
    return empty if value is None else clean_server_text(value, limit)


def to_json(data: Mapping[str, object] | Sequence[Mapping[str, object]]) -> str:
    """Indented for a person at a terminal, one compact line for a pipe (jq, a log)."""
    if sys.stdout.isatty():
        return json.dumps(data, indent=2)
    return json.dumps(data, separators=(",", ":"))


def key_text(source: str | None) -> str:
    from ..store.keys import WEAKNESS

    return WEAKNESS.get(source or "", "none yet")


# --- profiles ----------------------------------------------------------------------------------


def profile_json(p: Profile, has_tokens: bool, default: bool = False) -> dict[str, object]:
    return {
        "name": p.name,
        "default": default,
        "kind": p.kind,
        "client_id": p.client_id,
        "redirect_uri": p.redirect_uri,
        "scopes": list(p.scopes),
        "base_url": p.base_url,
        "has_tokens": has_tokens,
        **service_apps.settings_shown(p.extra),
        **network_shown(p.extra),
    }


def network_shown(extra: Mapping[str, str]) -> dict[str, str]:
    """A profile's --proxy and --ca-file as shown: the proxy without its user (it may be stored
    with one; the password never is)."""
    from ..network import CA_FILE, PROXY
    from ..transport.proxy import shown as proxy_shown

    out = {}
    if PROXY in extra:
        with_user = " (with a user name)" if "@" in extra[PROXY] else ""
        out[PROXY] = proxy_shown(extra[PROXY]) + with_user
    if CA_FILE in extra:
        out[CA_FILE] = extra[CA_FILE]
    return out


def profile_lines(data: Mapping[str, object]) -> list[str]:
    lines = []
    for key, value in data.items():
        shown_value = " ".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"{key:13} {shown_value}")
    lines.append(f"{'client_secret':13} (stored encrypted; not shown)")
    return lines


# --- sign-in and refresh -----------------------------------------------------------------------


def granted_lines(result: LoginResult, now: float, no_scopes: str) -> list[str]:
    """The scopes and both expiries of a new grant, as every sign-in summary shows them."""
    rec = result.record
    lines = [
        f"  scopes granted  {' '.join(result.granted_scopes) or no_scopes}",
        f"  access token    expires {iso(rec.access_expires_at)} "
        f"(in {human_left(rec.access_expires_at - now)})",
    ]
    if rec.refresh_expires_at is not None:
        lines.append(
            f"  refresh token   expires {iso(rec.refresh_expires_at)} "
            f"(in {human_left(rec.refresh_expires_at - now)})"
        )
    return lines


def login_summary(profile: str, result: LoginResult, store: str, now: float) -> str:
    rec = result.record
    ident = rec.identity
    who = shown(ident.email, 120, "unknown user")
    if ident.display_name:
        who = f"{shown(ident.display_name, 80)} <{who}>"
    lines = [f"Signed in as {who}, org {shown(ident.org_id, 60, 'unknown')}."]
    lines += granted_lines(result, now, "(none reported)")
    lines.append(f"  stored in       {store}")
    lines += [f"wxtoken: warning: {shown(w, 300)}" for w in result.warnings]
    lines.append(
        f"Next: `wxtoken export -p {profile}` hands the refresh token to the recorder; "
        f"`wxtoken status -p {profile}` watches it."
    )
    return "\n".join(lines)


def minted_summary(profile: str, p: Profile, result: LoginResult, now: float) -> str:
    """What `login` says after minting a service app's tokens."""
    rec = result.record
    lines = [
        f"Minted tokens for service app {profile!r} through {p.extra.get('minter')!r}, org "
        f"{shown(rec.identity.org_id, 60, 'unknown')}."
    ]
    lines += granted_lines(result, now, "(not reported by Webex)")
    lines += [f"wxtoken: warning: {shown(w, 300)}" for w in result.warnings]
    lines.append(
        f"Next: `wxtoken keep` keeps it alive (it is minted again if its refresh token dies); "
        f"`wxtoken status -p {profile}` watches it and its minter."
    )
    return "\n".join(lines)


def older_secret_warning(name: str) -> str:
    o = causes.OLDER_SECRET
    return f"wxtoken: warning: {name}: {o.text}; fix: {o.fix.format(profile=name)}"


def rotation_warning(name: str, result: RefreshResult | None) -> str | None:
    if result is None or not result.rotated:
        return None
    msg = (
        "wxtoken: warning: Webex returned a NEW refresh token (stored); any copy handed to "
        "a recorder is now stale"
    )
    if result.last_export:
        msg += (
            f" (last export: {result.last_export.get('at')}, format "
            f"{result.last_export.get('format')})"
        )
    return msg + f"; hand it over again with `wxtoken export -p {name}`"


def refreshed_line(name: str, result: RefreshResult, now: float) -> str:
    if not result.refreshed:
        return (
            f"{name!r} was refreshed less than a minute ago; nothing to do "
            f"(`wxtoken refresh -p {name} --force` refreshes anyway)."
        )
    expires = result.token.access_expires_at
    return (
        f"Refreshed {name!r}: access token expires {iso(expires)} (in {human_left(expires - now)})."
    )


# --- verify, export ----------------------------------------------------------------------------


def verify_line(result: VerifyResult) -> str:
    ident = result.identity
    return (
        f"Token of {shown(ident.display_name, 80, '')} <{shown(ident.email, 120)}>, org "
        f"{shown(ident.org_id, 60)}, valid until {iso(result.access_expires_at)} (per Webex)."
    )


def role_lines(result: VerifyResult) -> list[str]:
    held = {True: "yes", False: "NO", None: "not reported by Webex (cannot tell)"}
    return [f"  role {r.role}: {held[r.held]}" for r in result.roles]


def handoff_output(h: HandOff, fmt: str) -> str:
    if fmt == "refresh-token":
        return h.refresh_token
    if fmt == "json":
        return to_json(
            {
                "client_id": h.client_id,
                "client_secret": h.client_secret,
                "refresh_token": h.refresh_token,
                "refresh_expires_at": iso(h.refresh_expires_at),
            }
        )
    if fmt == "verint":
        return verint_form(h)
    pairs = (
        ("WEBEX_CLIENT_ID", h.client_id),
        ("WEBEX_CLIENT_SECRET", h.client_secret),
        ("WEBEX_REFRESH_TOKEN", h.refresh_token),
        ("WEBEX_ACCESS_TOKEN", h.access_token),
    )
    # `export`, so `eval "$(wxtoken export --format env)"` reaches the programs the shell starts.
    return "\n".join(f"export {var}={shlex.quote(value)}" for var, value in pairs)


def verint_form(h: HandOff) -> str:
    """The three fields of Verint's Webex data-source form, labelled as Verint labels them."""
    expires = iso(h.refresh_expires_at) if h.refresh_expires_at else "not stated by Webex"
    return "\n".join(
        (
            "Verint data source (Webex): paste each value into the field of the same name.",
            f"Client ID:      {h.client_id}",
            f"Client Secret:  {h.client_secret}",
            f"Refresh Token:  {h.refresh_token}",
            f"Refresh token expiry: {expires}",
            f"Reminder: the Verint adapter must run at least every {VERINT_RUN_EVERY_DAYS} days "
            "(it refreshes the token when it starts); a refresh token unused for longer lapses.",
        )
    )


# --- status ------------------------------------------------------------------------------------


def grant_notes(r: ProfileStatus, now: float) -> list[str]:
    """What status knows beyond the state: the cause and its fix, the last probe, the
    recorder's copy and the expiry trend."""
    notes = []
    described = causes.describe(r.cause, r.profile)
    if described is not None and r.state == "login_required":
        notes.append(f"{r.profile}: fix: {described[1]}")
    if r.probe is not None:
        # The cause's own sentence is already the state's reason; here go its name and what
        # Webex answered (with its trackingId, for a support case).
        age = now - r.probe.at
        when = "just now" if age < 1 else f"{human_left(age)} ago"
        line = f"{r.profile}: last probe {when}: {r.probe.verdict}"
        if r.probe.cause:
            line += f" ({r.probe.cause})"
        if r.probe.detail:
            line += f": {shown(r.probe.detail, 200)}"
        notes.append(line)
    if r.copy.state == "current":
        notes.append(
            f"{r.profile}: the recorder's copy is current (exported {iso(r.copy.exported_at)}, "
            f"{r.copy.format})"
        )
    if r.trend == "fixed" and r.refresh_expires_at is not None:
        notes.append(
            f"{r.profile}: the refresh token's expiry is fixed: refreshing does not extend it; "
            f"sign in again before {iso(r.refresh_expires_at)}"
        )
    elif r.trend == "slides":
        notes.append(f"{r.profile}: the refresh token's expiry slides on use")
    if r.client_secrets > 1:
        added = "" if r.secret_added_at is None else f", the newest added {iso(r.secret_added_at)}"
        if r.older_secret_used_at is not None:
            o = causes.OLDER_SECRET
            notes.append(
                f"{r.profile}: two client secrets held{added}; {o.text} at "
                f"{iso(r.older_secret_used_at)}; fix: {o.fix.format(profile=r.profile)}"
            )
        else:
            notes.append(
                f"{r.profile}: two client secrets held{added}; requests use the newest and "
                "fall back to the older; once the older is revoked at Webex: "
                f"wxtoken profile set {r.profile} --drop-old-client-secret"
            )
    return notes


def chain_notes(r: ProfileStatus, now: float) -> list[str]:
    """A service app's chain (service app <- minter <- ...) and the horizon that matters."""
    if not r.chain:
        return []
    line = f"{r.profile}: service app, minted through {' <- '.join(r.chain)}"
    if r.horizon_at is not None and r.horizon_profile not in (None, r.profile):
        line += (
            f"; the chain's first refresh-token expiry is {r.horizon_profile}'s, in "
            f"{human_left(r.horizon_at - now)}"
        )
    return [line]


_COLOUR = {"ok": "green", "warning": "yellow", "login_required": "red"}


def status_table(
    rows: list[ProfileStatus],
    now: float,
    keeper_running: bool,
    colour: bool | None = None,
    network: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """The table on stdout, then one line per note, the keeper and the store. `colour`: True or
    False forces it, None leaves it to whether stdout is a terminal. `network`: per profile,
    its proxy and trust source as network.Network.describe says them."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def left(ts: float | None) -> str:
        return "-" if ts is None else human_left(ts - now)

    table = Table(show_header=True, header_style="bold")
    for col in ("profile", "state", "access token", "refresh token", "scopes", "org", "user"):
        # The state is what a person reads first: never wrapped or cut, whatever the width.
        wide = len("login_required") if col == "state" else None
        table.add_column(col, no_wrap=col == "state", min_width=wide)
    for r in rows:
        scopes = f"{len(r.scopes)} granted"
        if r.missing_scopes:
            scopes += f", missing {' '.join(r.missing_scopes)}"
        table.add_row(
            Text(r.profile),
            Text(r.state, style=_COLOUR[r.state]),
            Text(left(r.access_expires_at)),
            Text(left(r.refresh_expires_at)),
            Text(scopes),
            Text(shown(r.org_id, 60)),
            Text(shown(r.user, 120)),
        )
    # Piped output (monitoring scripts, logs) gets full rows instead of 80-column wrapping.
    console = Console(
        highlight=False,
        width=None if sys.stdout.isatty() else 200,
        force_terminal=colour,
        no_color=colour is False,
    )
    console.print(table)
    notes = []
    for r in rows:
        if r.base_url != DEFAULT_BASE_URL:
            # Tokens and the client secret go wherever the base URL points: say so.
            notes.append(f"{r.profile}: talks to {r.base_url}, not Webex ({DEFAULT_BASE_URL})")
        if r.reason:
            notes.append(f"{r.profile}: {shown(r.reason, 300)}")
        notes += chain_notes(r, now)
        notes += grant_notes(r, now)
        notes += [f"{r.profile}: {shown(n, 300)}" for n in r.notes]
        if r.failures:
            notes.append(
                f"{r.profile}: {r.failures} failed refresh attempt(s); "
                f"last: {shown(r.last_error, 300)}"
            )
        if network and r.profile in network:
            proxy, trust = network[r.profile]
            notes.append(f"{r.profile}: proxy {proxy}; trust {trust}")
    notes.append(f"keeper: {'running' if keeper_running else 'not running'}")
    first = rows[0]
    notes.append(f"store: {first.storage}  key: {key_text(first.key_source)}")
    for line in notes:
        console.print(Text(line))
