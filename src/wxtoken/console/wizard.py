"""Connect a recorder: preset, the developer-portal steps, credentials, sign-in, export.

Each step validates with the library's own rules before moving on (`make_profile` for names,
scopes and the redirect URI; `add_profile` for the whole profile, as `profile add` does), and
a failure shows the CLI's message and fix.

Sign-in (step 4) is `signin.py`.
"""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._local import ENV_KEY_FILE, ENV_KEY_SOURCE, ENV_PASSPHRASE, Settings
from ..admin import add_profile
from ..device import DEVICE_HELPER_REDIRECT_URIS
from ..errors import UsageError, WxtokenError
from ..profile import (
    DEFAULT_BASE_URL,
    KIND_SERVICE_APP,
    SCOPE_PRESETS,
    loopback_listen_target,
    make_profile,
)
from ..store.keys import WEAKNESS
from .app import back, console_of, failed, form_of, notify, session_of

PRESETS = {"verint-calling": "Verint (Webex Calling recording)", "other": "Other (free scopes)"}
DEFAULT_REDIRECT = "http://127.0.0.1:8765/callback"
DEFAULT_NAME = "recorder"
PLACEHOLDER_CLIENT = "C0"  # validates the other fields before the client id is known


def _check(name: str, preset: str, scopes: str, redirect_uri: str) -> None:
    """The rules `profile add` applies, before the admin types a secret."""
    make_profile(
        name,
        client_id=PLACEHOLDER_CLIENT,
        redirect_uri=redirect_uri,
        scopes=None if preset != "other" else scopes,
        preset=preset if preset != "other" else None,
    )


def step_recorder(request: Request) -> Response:
    c, w = console_of(request), session_of(request).wizard
    return c.page(request, "wizard.html", step=1, w=w, presets=PRESETS, default_name=DEFAULT_NAME)


def post_recorder(request: Request) -> Response:
    form, w = form_of(request), session_of(request).wizard
    name = form.get("name", "").strip()
    preset = form.get("preset", "verint-calling")
    scopes = form.get("scopes", "").strip() if preset == "other" else ""
    w.update(name=name, preset=preset, scopes=scopes)
    try:
        if preset not in PRESETS:
            raise UsageError(f"unknown recorder preset {preset!r}", fix="choose one of the list")
        if preset == "other" and not scopes:
            # make_profile's own refusal tells a terminal user to pass --scopes or --preset.
            raise UsageError(
                'no scopes given for "Other"',
                fix="type the scopes the recorder needs, space-separated, in the Scopes field "
                "(e.g. spark:kms spark:people_read), or choose a recorder from the list",
            )
        _check(name, preset, scopes, w.get("redirect_uri", DEFAULT_REDIRECT))
    except WxtokenError as exc:
        failed(request, exc, name or "NAME")
        return back("/wizard")
    return back("/wizard/portal")


def step_portal(request: Request) -> Response:
    c, w = console_of(request), session_of(request).wizard
    # The first step keeps what was typed even when it was refused (to show it again), so an
    # unknown preset may be here: send the admin back rather than fail on it.
    if not w.get("name") or w.get("preset") not in PRESETS:
        return back("/wizard")
    scopes = w["scopes"] if w["preset"] == "other" else " ".join(SCOPE_PRESETS[w["preset"]])
    return c.page(
        request,
        "wizard.html",
        step=2,
        w=w,
        scope_string=scopes,
        redirect_uri=w.get("redirect_uri", DEFAULT_REDIRECT),
    )


def post_portal(request: Request) -> Response:
    form, w = form_of(request), session_of(request).wizard
    redirect_uri = form.get("redirect_uri", "").strip()
    w["redirect_uri"] = redirect_uri
    try:
        _check(w.get("name", ""), w.get("preset", ""), w.get("scopes", ""), redirect_uri)
    except WxtokenError as exc:
        failed(request, exc, w.get("name") or "NAME")
        return back("/wizard/portal")
    if loopback_listen_target(redirect_uri) is None:
        # Valid for Webex, but step 4's browser sign-in cannot catch it: say so now, before
        # the admin registers it at the portal, not only when signing in.
        notify(
            request,
            "warning",
            f"{redirect_uri} is not an address on this machine that wxtoken can listen on, so "
            "only the sign-in with a code will work from the console",
            f"use {DEFAULT_REDIRECT} (and register that on the integration) unless the "
            "recorder needs this one",
        )
    return back("/wizard/credentials")


def _key_choice(settings: Settings) -> str | None:
    """The key source the environment already decides for a new store, if any."""
    if settings.passphrase:
        return "passphrase"
    if settings.key_file:
        return "keyfile"
    return settings.key_source


def step_credentials(request: Request) -> Response:
    c, w = console_of(request), session_of(request).wizard
    if not w.get("redirect_uri"):
        return back("/wizard/portal")
    new = c.store_is_new()
    decided = _key_choice(c.settings) if new else c.store.key_source()
    return c.page(
        request,
        "wizard.html",
        step=3,
        w=w,
        new_store=new,
        decided=decided,
        weakness=WEAKNESS,
        default_base=DEFAULT_BASE_URL,
    )


def _settle_key(request: Request, form: dict[str, str]) -> None:
    """A new store's key, from the source the admin chose (or the environment decides)."""
    c = console_of(request)
    if not c.store_is_new() or _key_choice(c.settings) is not None:
        c.store.unlock(create=True)
        return
    source = form.get("key_source", "keyring")
    env = dict(os.environ, WXTOKEN_HOME=c.settings.home)
    if source == "passphrase":
        first, again = form.get("passphrase", ""), form.get("passphrase2", "")
        if not first or first != again:
            raise UsageError(
                "the two passphrases are empty or differ",
                fix="type the same new passphrase in both fields",
            )
        env[ENV_PASSPHRASE] = first
    elif source == "keyfile":
        path = form.get("key_file", "").strip()
        if not path:
            raise UsageError("no key file path given", fix="e.g. ~/.config/wxtoken.key")
        env[ENV_KEY_FILE] = path
    elif source == "keyring":
        env[ENV_KEY_SOURCE] = "keyring"
    else:
        raise UsageError(f"unknown key source {source!r}", fix="choose one of the list")
    previous = c.settings
    c.use_settings(Settings(env))
    try:
        c.store.unlock(create=True)
    except WxtokenError as exc:
        # A source that failed (no OS keyring on this host, say) must not stay chosen: the
        # console's settings would then decide it for every later try, and the admin could
        # never pick a passphrase or key file instead without restarting the console.
        c.use_settings(previous)
        if source == "keyring":
            exc.fix = 'choose "passphrase" or "key file" above instead'
        raise


def post_credentials(request: Request) -> Response:
    c, form, w = console_of(request), form_of(request), session_of(request).wizard
    if not w.get("redirect_uri") or w.get("preset") not in PRESETS:
        return back("/wizard/portal")  # the earlier steps' answers are needed below
    name = w.get("name", "")
    base_url = form.get("base_url", "").strip() or DEFAULT_BASE_URL
    w.update(client_id=form.get("client_id", "").strip(), base_url=base_url)
    secret = form.get("client_secret", "").strip()
    try:
        if not secret:
            raise UsageError(
                "no client secret given", fix="paste the Client Secret the developer portal showed"
            )
        new_store = c.store_is_new()
        _settle_key(request, form)
        replace = form.get("replace") == "yes"
        if not replace and any(p.name == name for p in c.store.list_profiles()):
            # The store's own refusal names the CLI's `--replace`; on this page that is the
            # checkbox, which an admin new to wxtoken would not map it to.
            raise UsageError(
                f"a profile named {name!r} exists already",
                fix='tick "Replace a profile of the same name" below to overwrite it, or go back '
                "to the first step and choose another name",
            )
        add_profile(
            name,
            client_id=w["client_id"],
            client_secret=secret,
            redirect_uri=w["redirect_uri"],
            scopes=w["scopes"] if w["preset"] == "other" else None,
            preset=None if w["preset"] == "other" else w["preset"],
            base_url=base_url,
            replace=replace,
            store=c.store,
        )
    except WxtokenError as exc:
        failed(request, exc, name or "NAME")
        return back("/wizard/credentials")
    saved = f"Profile {name!r} saved in {c.store.location} (secrets encrypted)."
    notify(request, "ok", saved + (_key_note(c.settings) if new_store else ""))
    return back(f"/wizard/signin?profile={name}")


def _key_note(settings: Settings) -> str:
    """What every later command needs to open the store just created here: the key source
    chosen on this page lives only in this console's memory, so without this the keeper (or
    the next `wxtoken token`) failed on a store the admin had just set up."""
    if settings.key_file:
        return (
            f" Its key is the file {settings.key_file}: every other wxtoken command and the "
            f"keeper need WXTOKEN_KEY_FILE={settings.key_file} in their environment."
        )
    if settings.passphrase:
        return (
            " Every other wxtoken command asks for its passphrase; the keeper needs it in "
            "WXTOKEN_PASSPHRASE (a systemd credential or an EnvironmentFile only its user can "
            "read)."
        )
    return ""


def step_signin(request: Request) -> Response:
    c = console_of(request)
    name = request.query_params.get("profile", "")
    try:
        p = c.store.get_profile(name)
    except WxtokenError as exc:
        failed(request, exc, name or "NAME")
        return back("/")
    job = c.jobs.get(name)
    return c.page(
        request,
        "wizard.html",
        step=4,
        w={"name": name},
        profile=p,
        job=job,
        service_app=p.kind == KIND_SERVICE_APP,
        helper_uris=DEVICE_HELPER_REDIRECT_URIS,
    )


ROUTES = [
    Route("/wizard", step_recorder, methods=["GET"]),
    Route("/wizard", post_recorder, methods=["POST"]),
    Route("/wizard/portal", step_portal, methods=["GET"]),
    Route("/wizard/portal", post_portal, methods=["POST"]),
    Route("/wizard/credentials", step_credentials, methods=["GET"]),
    Route("/wizard/credentials", post_credentials, methods=["POST"]),
    Route("/wizard/signin", step_signin, methods=["GET"]),
]
