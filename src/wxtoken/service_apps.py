"""Service-app profiles: their settings, and the rules of the chain of minters. Pure, no I/O.

A service app's tokens belong to a machine account of one org, not to a person. wxtoken gets
them by minting (`minting.py`): the app's client id and secret and the target org, posted with
the access token of another profile, its *minter* (an integration, or another service app,
whose token carries spark:applications_token). So profiles form chains: service app <- minter
<- ... <- an integration a person signed in to. The rules here:

- a service app's settings live in `Profile.extra` (`app_id`, `target_org`, `minter`), which
  the store binds into the client secret's associated data, and its redirect URI is empty
  (nothing is ever redirected to it);
- the minter exists, asks for spark:applications_token, and talks to the same Webex (its
  token is sent to the service app's base URL);
- the chain has no cycle (refused at `profile add` and `profile set`), so taking the minter's
  refresh lock while holding the service app's can never deadlock: locks are always taken
  down the chain, which has an end;
- a minter is not removed while a service app depends on it.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Iterable, Mapping

from .errors import ProfileNotFound, UsageError
from .profile import KIND_INTEGRATION, KIND_SERVICE_APP, Profile, validate_name

MINT_SCOPE = "spark:applications_token"
APP_ID = "app_id"
TARGET_ORG = "target_org"
MINTER = "minter"
# Webex REST ids are base64 (no padding) of `ciscospark://us/<KIND>/<id>`: a few hundred
# characters at most. Anything else cannot be one and would only end up in a URL path.
_REST_ID = re.compile(r"[A-Za-z0-9+/_-]{8,400}={0,2}")


def is_service_app(profile: Profile) -> bool:
    return profile.kind == KIND_SERVICE_APP


def minter_of(profile: Profile) -> str | None:
    """The name of the profile that mints this one's tokens (None: not a service app)."""
    return profile.extra.get(MINTER) if is_service_app(profile) else None


def validate_app_id(app_id: str) -> str:
    app_id = app_id.strip()
    if not _REST_ID.fullmatch(app_id):
        raise UsageError(
            "the application id is not a Webex id (a long base64 string)",
            fix="copy the Application ID from the service app's page at developer.webex.com",
        )
    return app_id


def org_rest_id(value: str) -> str:
    """The org's Webex REST id, from either form users have: the REST id itself, or the bare
    UUID (the one every token ends with). Minting is sent the REST id, as every Webex API is."""
    value = value.strip()
    try:
        return _rest_id("ORGANIZATION", str(uuid.UUID(value)))
    except ValueError:
        pass
    decoded = _decode_rest_id(value)
    if decoded is not None and decoded[0] == "ORGANIZATION":
        return value.rstrip("=")
    raise UsageError(
        "the target org is neither a Webex org id nor an org UUID",
        fix="copy the org id from Control Hub (Account > Organization ID), or from "
        "`wxtoken status --json` of a profile signed in to that org",
    )


def _rest_id(kind: str, raw: str) -> str:
    return base64.b64encode(f"ciscospark://us/{kind}/{raw}".encode()).decode().rstrip("=")


def _decode_rest_id(value: str) -> tuple[str, str] | None:
    if not _REST_ID.fullmatch(value):
        return None
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    parts = raw.split("/")
    if not raw.startswith("ciscospark://") or len(parts) != 5:
        return None
    return parts[3], parts[4]


def service_app_extra(app_id: str, target_org: str, minter: str) -> dict[str, str]:
    """A service app's `Profile.extra`, each value validated (the minter by name only)."""
    return {
        APP_ID: validate_app_id(app_id),
        TARGET_ORG: org_rest_id(target_org),
        MINTER: validate_name(minter),
    }


def check_minter(
    get_profile: Callable[[str], Profile], name: str, minter: str, base_url: str
) -> Profile:
    """The minter of service app `name`, checked as far as can be without the network: it
    exists, is an integration or a service app, asks for spark:applications_token, talks to
    the same base URL, and does not close a cycle. Returns the minter's profile."""
    if minter == name:
        raise UsageError(
            f"service app {name!r} cannot mint its own tokens",
            fix=f"name an integration profile that asks for {MINT_SCOPE}: --minter PROFILE",
        )
    try:
        found = get_profile(minter)
    except ProfileNotFound:
        raise UsageError(
            f"the minter {minter!r} of {name!r} is not a profile",
            fix=f"add it first (an integration asking for {MINT_SCOPE}), or see "
            "`wxtoken profile list`",
        ) from None
    if found.kind not in (KIND_INTEGRATION, KIND_SERVICE_APP):
        raise UsageError(
            f"the minter {minter!r} is a {found.kind} profile, which cannot mint",
            fix="name an integration or a service-app profile: --minter PROFILE",
        )
    if MINT_SCOPE not in found.scopes:
        raise UsageError(
            f"the minter {minter!r} does not ask for {MINT_SCOPE}, which minting needs",
            fix=f"wxtoken profile set {minter} --scopes "
            f'"{" ".join((*found.scopes, MINT_SCOPE))}", then wxtoken login -p {minter}',
        )
    if found.base_url != base_url:
        raise UsageError(
            f"the minter {minter!r} talks to {found.base_url}, the service app to {base_url}; "
            "the minter's token would be sent to another server",
            fix=f"give both the same --base-url (or omit it: {name!r} takes its minter's)",
        )
    chain = [name, minter]
    current = found
    while (up := minter_of(current)) is not None:
        chain.append(up)
        if up == name:
            raise UsageError(
                f"minting {name!r} through {minter!r} would make a cycle ({' <- '.join(chain)})",
                fix=f"name a minter whose chain ends at an integration: wxtoken profile set "
                f"{name} --minter PROFILE",
            )
        try:
            current = get_profile(up)
        except ProfileNotFound:
            break
        if up in chain[:-1]:  # a cycle above us that does not include `name`: stop walking
            break
    return found


def chain_of(get_profile: Callable[[str], Profile], profile: Profile) -> tuple[Profile, ...]:
    """The minters above `profile`, nearest first; ends at an integration, or where a minter is
    missing (it cannot be, unless the store was edited) or repeats."""
    out: list[Profile] = []
    seen = {profile.name}
    current = profile
    while (up := minter_of(current)) is not None and up not in seen:
        try:
            current = get_profile(up)
        except ProfileNotFound:
            break
        seen.add(up)
        out.append(current)
    return tuple(out)


def dependants(profiles: Iterable[Profile], name: str) -> list[str]:
    """The service apps minted through profile `name`, sorted."""
    return sorted(p.name for p in profiles if minter_of(p) == name)


def check_removable(profiles: Iterable[Profile], name: str) -> None:
    """Refuse to remove a minter while a service app depends on it."""
    deps = dependants(profiles, name)
    if deps:
        raise UsageError(
            f"profile {name!r} mints the tokens of {', '.join(repr(d) for d in deps)}; removing "
            "it would leave them unable to mint again",
            fix=f"first give each another minter (wxtoken profile set {deps[0]} --minter "
            f"PROFILE) or remove it (wxtoken profile remove {deps[0]})",
        )


def settings_shown(extra: Mapping[str, str]) -> dict[str, str]:
    """The service-app settings `profile show` prints (none is secret)."""
    return {k: extra[k] for k in (APP_ID, TARGET_ORG, MINTER) if k in extra}
