"""The console as a Starlette app: the shared state (`Console`), page rendering, and the
dashboard, profile and keeper routes. The wizard's routes are in `wizard.py`, the profile
actions in `actions.py`; all of them call the library exactly as the CLI commands do.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._local import Settings
from ..errors import WxtokenError
from ..keeper.config import KeeperConfig
from ..manager import TokenManager
from ..store import TokenStore, open_store
from . import views
from .security import Gate, Guard, Session

if TYPE_CHECKING:
    import httpx2

HERE = Path(__file__).parent


class Console:
    """What every request needs: settings, the store, the keeper's config, sign-in jobs."""

    def __init__(
        self,
        settings: Settings,
        store: TokenStore,
        gate: Gate,
        *,
        config: KeeperConfig | None = None,
        config_path: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gate = gate
        self.config = config or KeeperConfig()
        self.config_path = config_path
        self.transport = transport
        self.clock = clock
        self.jobs: dict[str, Any] = {}  # profile -> signin.SigninJob
        self.lock = threading.Lock()
        self._profile_locks: dict[str, threading.Lock] = {}
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def __repr__(self) -> str:
        return f"Console(store={self.store.location!r})"

    def manager(self, name: str) -> TokenManager:
        """A manager for one request, as `App.manager` makes one for one command."""
        return TokenManager(
            name,
            store=self.store,
            settings=self.settings,
            transport=self.transport,
            clock=self.clock,
        )

    @contextlib.contextmanager
    def one_at_a_time(self, name: str) -> Iterator[None]:
        """This console's actions on one profile, one after the other. The library's probe and
        hand-off write back the record they read, outside the refresh lock: beside a refresh
        (two tabs, a double click) the record stopped matching the stored token, and only a
        new sign-in recovered."""
        with self.lock:
            lock = self._profile_locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def store_is_new(self) -> bool:
        """No key yet: the wizard asks where it should come from. (An embedded store's file is
        looked for first, so that merely looking does not create it.)"""
        shared = self.settings.store_url is not None
        if not shared and not os.path.exists(self.settings.db_path):
            return True
        return self.store.key_source() is None

    def use_settings(self, settings: Settings) -> None:
        """Reopen the store with a key source the admin chose in the wizard."""
        with self.lock:
            old, self.settings = self.store, settings
            self.store = open_store(settings, clock=self.clock)
        old.close()

    def page(self, request: Request, template: str, status: int = 200, **data: Any) -> Response:
        session = session_of(request)
        notice, session.notice = session.notice, None
        body = self.templates.get_template(template).render(
            csrf=session.csrf, notice=notice, path=request.url.path, **data
        )
        return HTMLResponse(body, status_code=status)


def session_of(request: Request) -> Session:
    session = request.state.session
    assert isinstance(session, Session)
    return session


def form_of(request: Request) -> dict[str, str]:
    form = getattr(request.state, "form", None)
    return form if isinstance(form, dict) else {}


def console_of(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


def notify(request: Request, kind: str, text: str, fix: str | None = None) -> None:
    session_of(request).notice = (kind, text, fix or "")


def failed(request: Request, exc: WxtokenError, profile: str) -> None:
    """The CLI's one line, split into what happened and the fix, with the profile named."""
    exc.for_profile(profile)
    message = exc.one_line().split("; fix: ")[0]
    notify(request, "error", message, exc.fix)


def back(to: str) -> Response:
    return RedirectResponse(to, status_code=303)


def dashboard(request: Request) -> Response:
    c = console_of(request)
    data = views.dashboard(c.store, c.settings, c.config, c.clock())
    return c.page(request, "dashboard.html", **data)


def profile(request: Request) -> Response:
    c = console_of(request)
    name = request.path_params["name"]
    try:
        with c.manager(name) as tm:
            siblings = tm.siblings()
            data = views.profile_page(c.store, tm.name, c.clock(), siblings)
    except WxtokenError as exc:
        failed(request, exc, name)
        return back("/")
    return c.page(request, "profile.html", **data)


def not_found(request: Request, exc: Exception) -> Response:
    return Response("Not found.", status_code=404, media_type="text/plain")


def library_error(request: Request, exc: Exception) -> Response:
    """A library error no route caught (the store damaged, its database down, ...): the CLI's
    message and fix on a page. Without this the dashboard answered a bare 500 and printed a
    traceback on the console's stderr, and a route that sends the admin back to the dashboard
    with the error lost it there."""
    assert isinstance(exc, WxtokenError)
    failed(request, exc, str(request.path_params.get("name", "NAME")))
    return console_of(request).page(request, "base.html", status=503)


def build_app(console: Console) -> Guard:
    from . import actions, keeperpage, signin, wizard

    routes = [
        Route("/", dashboard),
        Route("/profile/{name}", profile),
        *actions.ROUTES,
        *wizard.ROUTES,
        *signin.ROUTES,
        *keeperpage.ROUTES,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, WxtokenError: library_error})
    app.state.console = console
    return Guard(app, console.gate)
