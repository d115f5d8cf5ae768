"""The profile page's buttons, each the manager call its CLI command makes: probe (`status
--probe`), refresh (`refresh --force`), export (`export --format verint`), mark current
(`export --mark-current`), revoke (`revoke`). Messages are the CLI's own lines.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..cli import render
from ..errors import WxtokenError
from ..reasons import Forced
from ..token import iso
from .app import back, console_of, failed, form_of, notify
from .views import shown

EXPORT_FORMAT = "verint"  # the recorder preset the console hands over for


def _name(request: Request) -> str:
    return str(request.path_params["name"])


def probe(request: Request) -> Response:
    c, name = console_of(request), _name(request)
    try:
        # The library records the verdict under the profile's refresh lock (checks.py), so a
        # keeper refreshing from another process cannot be overwritten by it.
        with c.manager(name) as tm, c.one_at_a_time(name):
            found = tm.probe()
    except WxtokenError as exc:
        failed(request, exc, name)
    else:
        said = f" ({found.cause})" if found.cause else ""
        # What Webex answered, as `status --probe` prints it: without it "unknown" or
        # "degraded" gives the admin nothing to act on (or to quote in a support case).
        if found.detail:
            said += f": {shown(found.detail, 200)}"
        notify(
            request,
            "ok" if found.verdict == "alive" else "warning",
            f"Probed {name!r} at Webex: {found.verdict}{said}.",
        )
    return back(f"/profile/{name}")


def refresh(request: Request) -> Response:
    c, name = console_of(request), _name(request)
    try:
        with c.manager(name) as tm, c.one_at_a_time(name):
            result = tm.refresh(Forced(unless_newer_than=None))
            warning = render.rotation_warning(tm.name, tm.last_refresh)
    except WxtokenError as exc:
        failed(request, exc, name)
    else:
        notify(
            request,
            "warning" if warning else "ok",
            render.refreshed_line(name, result, c.clock()),
            warning.removeprefix("wxtoken: warning: ") if warning else None,
        )
    return back(f"/profile/{name}")


def mark_current(request: Request) -> Response:
    c, name = console_of(request), _name(request)
    try:
        with c.manager(name) as tm, c.one_at_a_time(name):
            tm.mark_current()
    except WxtokenError as exc:
        failed(request, exc, name)
    else:
        notify(request, "ok", f"Recorded that the recorder holds {name!r}'s current refresh token.")
    return back(f"/profile/{name}")


def revoke(request: Request) -> Response:
    c, name = console_of(request), _name(request)
    typed = form_of(request).get("confirm", "").strip()
    if typed != name:
        notify(
            request,
            "error",
            "Not revoked: the confirmation does not match the profile name.",
            f"type {name} in the confirmation field, then press Revoke",
        )
        return back(f"/profile/{name}#revoke")
    try:
        with c.manager(name) as tm, c.one_at_a_time(name):
            marked = tm.revoke()
    except WxtokenError as exc:
        failed(request, exc, name)
        return back(f"/profile/{name}")
    also = f" Marked login_required (revoked with it): {', '.join(marked)}." if marked else ""
    notify(
        request,
        "ok",
        f"Revoked at Webex and removed locally for {name!r}.{also}",
        'sign in again with the "Sign in again" button',
    )
    return back(f"/profile/{name}")


def export_page(request: Request) -> Response:
    """The Verint fields, secrets hidden until revealed."""
    c, name = console_of(request), _name(request)
    try:
        p = c.store.get_profile(name)
        record = c.store.token_record(name)
    except WxtokenError as exc:
        failed(request, exc, name)
        return back("/")
    return c.page(
        request,
        "export.html",
        name=name,
        client_id=p.client_id,
        revealed=None,
        has_tokens=record is not None and record.refresh_fp is not None,
        run_every=render.VERINT_RUN_EVERY_DAYS,
    )


def reveal(request: Request) -> Response:
    """Reveal the Verint fields: the same hand-off as `export --format verint`, recorded in
    the event log, and the recorder's copy is current from here."""
    c, name = console_of(request), _name(request)
    try:
        with c.manager(name) as tm, c.one_at_a_time(name):
            handoff = tm.export(EXPORT_FORMAT)
            warning = render.rotation_warning(tm.name, tm.last_refresh)
    except WxtokenError as exc:
        failed(request, exc, name)
        return back(f"/profile/{name}/export")
    if warning:
        notify(request, "warning", warning.removeprefix("wxtoken: warning: "))
    expires = iso(handoff.refresh_expires_at) if handoff.refresh_expires_at else None
    return c.page(
        request,
        "export.html",
        name=name,
        client_id=handoff.client_id,
        revealed={
            "client_secret": handoff.client_secret,
            "refresh_token": handoff.refresh_token,
            "refresh_expires_at": expires or "not stated by Webex",
        },
        has_tokens=True,
        run_every=render.VERINT_RUN_EVERY_DAYS,
    )


ROUTES = [
    Route("/profile/{name}/probe", probe, methods=["POST"]),
    Route("/profile/{name}/refresh", refresh, methods=["POST"]),
    Route("/profile/{name}/mark-current", mark_current, methods=["POST"]),
    Route("/profile/{name}/revoke", revoke, methods=["POST"]),
    Route("/profile/{name}/export", export_page, methods=["GET"]),
    Route("/profile/{name}/export", reveal, methods=["POST"]),
]
