"""The keeper page: whether one runs (doctor's check), its schedule and alert thresholds from the
config file the console was given (`--config`, as `wxtoken keep --config`), the alert channels
without their secret parts, and a test alert sent through the keeper's own delivery code.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..durations import human_left
from ..keeper.alerts import AlertError, deliver
from ..keeper.schedule import Alert
from . import views
from .app import back, console_of, notify

TEST_ALERT_TEXT = (
    "wxtoken console: a test alert. This channel receives wxtoken's alerts before a grant "
    "lapses; nothing needs doing."
)


def keeper(request: Request) -> Response:
    c = console_of(request)
    sched = [
        (f.name.replace("_", " "), _value(getattr(c.config.schedule, f.name)))
        for f in dataclasses.fields(c.config.schedule)
    ]
    return c.page(
        request,
        "keeper.html",
        keeper=views.keeper_state(c.settings),
        schedule=sched,
        thresholds=[human_left(t) for t in c.config.thresholds],
        failures=c.config.failures,
        channels=views.channels(c.config),
        config_path=c.config_path,
    )


def _value(v: float | int) -> str:
    return str(v) if isinstance(v, int) or v < 1 else human_left(float(v))


def test_alert(request: Request) -> Response:
    """One test alert to every channel; each channel's outcome is shown and logged."""
    c = console_of(request)
    if not c.config.channels:
        notify(
            request,
            "warning",
            "No alert channels are configured.",
            "add [[alerts.webhook]], [[alerts.webex]] or [[alerts.email]] to the keeper's "
            "config (wxtoken keep --print-config), then start the console with --config",
        )
        return back("/keeper")
    alert = Alert(
        key=f"test:{c.clock():.0f}",
        kind="test",
        profile="-",
        org_id=None,
        text=TEST_ALERT_TEXT,
        fix=None,
    )
    outcomes, failures = [], 0
    for channel in c.config.channels:
        try:
            deliver(channel, alert)
        except AlertError as exc:
            outcomes.append(f"{channel.describe()}: failed ({exc})")
            failures += 1
            ok = False
        else:
            outcomes.append(f"{channel.describe()}: sent")
            ok = True
        c.store.append_event(None, "test_alert", {"channel": channel.describe(), "ok": ok})
    notify(request, "warning" if failures else "ok", "Test alert: " + "; ".join(outcomes) + ".")
    return back("/keeper")


ROUTES = [
    Route("/keeper", keeper, methods=["GET"]),
    Route("/keeper/test-alert", test_alert, methods=["POST"]),
]
