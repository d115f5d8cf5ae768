"""Sign-in from the console: the flows of `wxtoken login` and `wxtoken login --device`, each run
on a worker thread while the page polls it.

Browser sign-in runs `login.run_login`: the store's key, wxtoken's loopback listener on the
profile's redirect URI, one question to Webex whether it would start this sign-in, then the
authorize address, which the page shows as a link (the console never starts a browser of its
own). The console is not the redirect target: the listener checks state and PKCE exactly as on
the terminal. Device sign-in runs `login.device.run_device_login` (its pace, its checks of the
verification address) and shows the code, the address and its QR code on the page. Either way
the page moves on to the export page once the tokens are stored. A service app is minted.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import WxtokenError
from ..grants import DeviceAuthorization
from ..login import run_login
from ..manager import TokenManager
from ..profile import KIND_SERVICE_APP, loopback_listen_target
from .app import Console, back, console_of, failed, form_of, notify
from .wizard import DEFAULT_REDIRECT

SIGNIN_TIMEOUT = 600.0


@dataclass
class SigninJob:
    """A sign-in running on a worker thread; the page polls it. Holds nothing secret: the
    authorize address carries only the state and the PKCE challenge, and a device's user code
    is meant to be read by a person."""

    kind: str  # browser | device
    url: str | None = None  # the authorize address, or the device verification page
    user_code: str | None = None
    complete_url: str | None = None  # the verification page with the code filled in
    qr_svg: str | None = None
    done: bool = False
    error: str | None = None
    fix: str | None = None

    def as_json(self, name: str) -> dict[str, object]:
        return {
            "kind": self.kind,
            "ready": self.url is not None,
            "done": self.done,
            "error": self.error,
            "next": f"/profile/{name}/export" if self.done and not self.error else None,
        }


def start(request: Request) -> Response:
    """Start a sign-in (`method`: browser or device) and go back to the page that shows it."""
    c, form = console_of(request), form_of(request)
    name, method = form.get("profile", ""), form.get("method", "browser")
    try:
        tm = c.manager(name)
        kind = tm.profile.kind
    except WxtokenError as exc:
        failed(request, exc, name or "NAME")
        return back("/")
    if kind == KIND_SERVICE_APP:
        return _mint(request, tm)
    page = f"/wizard/signin?profile={name}"
    if method != "device" and loopback_listen_target(tm.profile.redirect_uri) is None:
        # The terminal's paste mode has no counterpart on the page: such a sign-in could only
        # end in "nothing was pasted", after the admin had signed in at Webex for nothing.
        tm.close()
        notify(
            request,
            "error",
            f"the console catches a browser sign-in only on a loopback redirect URI "
            f"(http://127.0.0.1:PORT/...), and {name!r} uses {tm.profile.redirect_uri}",
            f'press "Sign in with a code" instead, or run `wxtoken login -p {name} --paste` in '
            f"a terminal, or `wxtoken profile set {name} --redirect-uri {DEFAULT_REDIRECT}` "
            "(and register that URI on the integration)",
        )
        return back(page)
    with c.lock:
        running = c.jobs.get(name)
        if running is not None and not running.done:
            tm.close()
            return back(page)
        job = c.jobs[name] = SigninJob("device" if method == "device" else "browser")
    work = _device if job.kind == "device" else _browser
    threading.Thread(
        target=_run, args=(tm, job, lambda: work(c, tm, job)), daemon=True, name="wxtoken-signin"
    ).start()
    return back(page)


def _mint(request: Request, tm: TokenManager) -> Response:
    try:
        with tm:
            tm.mint()
    except WxtokenError as exc:
        failed(request, exc, tm.name)
    else:
        notify(request, "ok", f"Minted tokens for service app {tm.name!r} through its minter.")
    return back(f"/profile/{tm.name}")


def _browser(c: Console, tm: TokenManager, job: SigninJob) -> None:
    def show(url: str) -> None:
        job.url = url

    run_login(
        tm,
        open_browser=False,
        paste=False,
        timeout=SIGNIN_TIMEOUT,
        transport=c.transport,
        stdin=io.StringIO(),
        err=io.StringIO(),
        show_url=show,
    )


def _device(c: Console, tm: TokenManager, job: SigninJob) -> None:
    from ..login.device import require_granted, run_device_login, verification_address

    def show(auth: DeviceAuthorization) -> None:
        import segno

        base = tm.profile.base_url
        complete = auth.verification_uri_complete
        try:
            complete = verification_address(complete, base) if complete else None
        except WxtokenError:
            complete = None  # as on the terminal: the plain address and the code still work
        job.user_code = auth.user_code
        job.complete_url = complete
        job.qr_svg = segno.make(complete or auth.verification_uri, error="l").svg_inline(
            scale=5, title="QR code of the verification page"
        )
        job.url = verification_address(auth.verification_uri, base)

    result = run_device_login(tm, qr=False, err=io.StringIO(), terminal=False, on_code=show)
    require_granted(tm.name, result)


def _run(tm: TokenManager, job: SigninJob, work: Callable[[], None]) -> None:
    try:
        with tm:
            work()
    except WxtokenError as exc:
        exc.for_profile(tm.name)
        job.error, job.fix = exc.one_line().split("; fix: ")[0], exc.fix
    except Exception as exc:  # the page must end, whatever happened on the thread
        job.error = f"the sign-in stopped unexpectedly ({type(exc).__name__})"
    job.done = True


def status(request: Request) -> Response:
    c = console_of(request)
    name = request.query_params.get("profile", "")
    job = c.jobs.get(name)
    if job is None:
        return JSONResponse({"error": "no sign-in running"}, status_code=404)
    return JSONResponse(job.as_json(name))


ROUTES = [
    Route("/wizard/signin", start, methods=["POST"]),
    Route("/wizard/signin/status", status, methods=["GET"]),
]
