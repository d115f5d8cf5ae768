"""Profile administration for programs: add or update a profile, validated as the CLI does.

>>> from wxtoken import add_profile                                  # doctest: +SKIP
>>> add_profile("recorder", client_id="C0123...", client_secret=secret,
...             redirect_uri="http://127.0.0.1:8765/callback", preset="verint-calling")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import service_apps
from ._local import Settings
from .errors import ProfileNotFound, UsageError
from .profile import KIND_SERVICE_APP, Profile, make_profile, validate_name
from .store import TokenStore, open_store


def add_profile(
    name: str,
    *,
    client_id: str,
    client_secret: str | Callable[[], str],
    redirect_uri: str,
    scopes: str | Sequence[str] | None = None,
    preset: str | None = None,
    base_url: str | None = None,
    replace: bool = False,
    store: TokenStore | None = None,
    settings: Settings | None = None,
    proxy: str | None = None,
    ca_file: str | None = None,
) -> Profile:
    """Validate and save a profile (with `replace`, overwrite one of that name); returns it.

    `client_secret` may be a function, called only once the profile is valid (the CLI asks for
    the secret then, not before an error). Tokens of a replaced profile are kept unless its
    client id changes.
    """
    profile = make_profile(
        name,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        preset=preset,
        base_url=base_url,
        extra=_network_extra({}, proxy, ca_file),
    )
    secret = client_secret() if callable(client_secret) else client_secret
    store = store if store is not None else open_store(settings)
    # Replacing a profile whole also forgets an older client secret held for a rotation.
    store.save_profile(profile, secret, replace=replace, keep_old_secret=False)
    return profile


def update_profile(
    name: str,
    *,
    client_secret: str | Callable[[], str] | None = None,
    redirect_uri: str | None = None,
    scopes: str | Sequence[str] | None = None,
    preset: str | None = None,
    base_url: str | None = None,
    minter: str | None = None,
    store: TokenStore | None = None,
    settings: Settings | None = None,
    proxy: str | None = None,
    ca_file: str | None = None,
) -> Profile:
    """Change some settings of a profile, validated as a new one would be; returns it.

    What is not given stays; the stored tokens stay too (the client id does not change).
    `minter` is a service app's only: another profile to mint its tokens through.
    """
    store = store if store is not None else open_store(settings)
    old = store.get_profile(name)
    extra = _network_extra(service_app_changes(store, old, minter, base_url), proxy, ca_file)
    if scopes is None and preset is None:
        scopes = old.scopes
    profile = make_profile(
        name,
        client_id=old.client_id,
        redirect_uri=redirect_uri if redirect_uri is not None else old.redirect_uri,
        scopes=scopes,
        preset=preset,
        base_url=base_url if base_url is not None else old.base_url,
        kind=old.kind,
        extra=extra,
    )
    secret = client_secret() if callable(client_secret) else client_secret
    store.save_profile(profile, secret, replace=True)
    return profile


def add_service_app(
    name: str,
    *,
    app_id: str,
    client_id: str,
    client_secret: str | Callable[[], str],
    target_org: str,
    minter: str,
    scopes: str | Sequence[str] | None = None,
    preset: str | None = None,
    base_url: str | None = None,
    replace: bool = False,
    store: TokenStore | None = None,
    settings: Settings | None = None,
    proxy: str | None = None,
    ca_file: str | None = None,
) -> Profile:
    """Validate and save a service-app profile whose tokens are minted through `minter`.

    The minter must exist, ask for spark:applications_token and close no cycle; the base URL
    defaults to the minter's (see service_apps.py for the rules).
    """
    store = store if store is not None else open_store(settings)
    extra = _network_extra(
        service_apps.service_app_extra(app_id, target_org, minter), proxy, ca_file
    )
    if base_url is None:
        try:
            base_url = store.get_profile(minter).base_url
        except ProfileNotFound:
            pass  # check_minter says so, in its words
    profile = make_profile(
        name,
        client_id=client_id,
        redirect_uri="",
        scopes=scopes,
        preset=preset,
        base_url=base_url,
        kind=KIND_SERVICE_APP,
        extra=extra,
    )
    service_apps.check_minter(store.get_profile, name, minter, profile.base_url)
    secret = client_secret() if callable(client_secret) else client_secret
    store.save_profile(profile, secret, replace=replace, keep_old_secret=False)
    return profile


def service_app_changes(
    store: TokenStore, old: Profile, minter: str | None, base_url: str | None
) -> dict[str, str]:
    """`old.extra` with a new minter, checked; a service app's chain is re-checked whenever
    its base URL changes too (the minter's token must not go elsewhere)."""
    extra = dict(old.extra)
    if minter is None and (old.kind != KIND_SERVICE_APP or base_url is None):
        return extra
    if old.kind != KIND_SERVICE_APP:
        raise UsageError(
            f"{old.name!r} is an {old.kind}, not a service app: it has no minter",
            fix=f"see `wxtoken profile show {old.name}`",
        )
    if minter is not None:
        extra[service_apps.MINTER] = validate_name(minter)
    target = base_url if base_url is not None else old.base_url
    service_apps.check_minter(store.get_profile, old.name, extra[service_apps.MINTER], target)
    return extra


def add_client_secret(
    name: str,
    client_secret: str | Callable[[], str],
    *,
    store: TokenStore | None = None,
    settings: Settings | None = None,
) -> None:
    """Hold a new client secret beside the current one while the integration's secret is
    rotated: requests use the new one and fall back to the older on invalid_client."""
    store = store if store is not None else open_store(settings)
    store.get_profile(name)  # a missing profile fails before the secret is asked for
    secret = client_secret() if callable(client_secret) else client_secret
    store.add_client_secret(name, secret)


def drop_old_client_secret(
    name: str, *, store: TokenStore | None = None, settings: Settings | None = None
) -> bool:
    """Forget the older of two client secrets; False if the profile held only one."""
    store = store if store is not None else open_store(settings)
    return store.drop_old_client_secret(name)


def _network_extra(extra: dict[str, str], proxy: str | None, ca_file: str | None) -> dict[str, str]:
    from .network import network_extra  # imports the HTTP transport: only when asked for

    return network_extra(extra, proxy, ca_file) if (proxy, ca_file) != (None, None) else extra
