"""The expiry timeline: one row per grant, its refresh token's remaining life as a bar that ends
at its expiry date, the keeper's alert thresholds and "today" marked. Pure: rows in, SVG out.

Server-rendered SVG so it prints and needs no script. State is told three ways, so it reads
with colours off or in grey print: the bar's fill pattern (solid ok, hatched warning, outline
only when a sign-in is needed), the state word at the row's end, and the colour.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from html import escape

from ..durations import human_left
from ..status import STATE_LOGIN_REQUIRED, STATE_OK, STATE_WARNING, ProfileStatus

DAY = 86400.0
MIN_SPAN_DAYS = 100  # Webex refresh tokens live ~90 days: a shorter axis would hide the scale
LABEL_W = 170  # the profile name column
STATE_W = 270  # the state and expiry text at the right
PLOT_W = 680
MIN_LABEL_GAP = 30  # threshold labels closer than this to the previous one are left out
ROW_H = 26
TOP = 34  # room for the threshold labels
BOTTOM = 26  # room for the date axis

_CLASS = {STATE_OK: "tl-ok", STATE_WARNING: "tl-warning", STATE_LOGIN_REQUIRED: "tl-login"}


def _day(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%d %b")


def timeline_svg(rows: Sequence[ProfileStatus], now: float, thresholds: Sequence[float]) -> str:
    """The whole <svg> element (every text escaped)."""
    ends = [r.refresh_expires_at for r in rows if r.refresh_expires_at is not None]
    span = max([MIN_SPAN_DAYS * DAY, *((e - now) * 1.05 for e in ends)])
    width = LABEL_W + PLOT_W + STATE_W
    height = TOP + ROW_H * max(1, len(rows)) + BOTTOM

    def x(ts: float) -> float:
        return LABEL_W + max(0.0, min(1.0, (ts - now) / span)) * PLOT_W

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" '
        'aria-labelledby="tl-title tl-desc">',
        '<title id="tl-title">Refresh-token expiry timeline</title>',
        '<desc id="tl-desc">One row per grant: a bar from today to the expiry of its refresh '
        "token; dashed lines mark the keeper's alert thresholds.</desc>",
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="tl-hatch-bg"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="tl-hatch"/></pattern></defs>',
    ]
    bottom = TOP + ROW_H * max(1, len(rows))
    for i, r in enumerate(rows):
        y = TOP + i * ROW_H
        if i % 2:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{ROW_H}" class="tl-band"/>')
        out.append(
            f'<text x="8" y="{y + 17}" class="tl-name">{escape(_clip(r.profile, 22))}</text>'
        )
        cls = _CLASS[r.state]
        if r.refresh_expires_at is None:
            label = "no refresh token" if r.access_expires_at is None else "expiry not stated"
        elif r.refresh_expires_at <= now:
            label = "expired"
        else:
            end = x(r.refresh_expires_at)
            out.append(
                f'<rect x="{LABEL_W}" y="{y + 6}" width="{max(2.0, end - LABEL_W):.1f}" '
                f'height="{ROW_H - 12}" rx="3" class="tl-bar {cls}"/>'
            )
            label = f"{_day(r.refresh_expires_at)} · in {human_left(r.refresh_expires_at - now)}"
        out.append(
            f'<text x="{LABEL_W + PLOT_W + 8}" y="{y + 17}" class="tl-state {cls}">'
            f"{escape(r.state.replace('_', ' '))}: {escape(label)}</text>"
        )
    labelled = float(LABEL_W + PLOT_W)  # the right end: labels are placed from the widest in
    for t in sorted(thresholds, reverse=True):
        tx = x(now + t)
        out.append(
            f'<line x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{bottom}" class="tl-threshold"/>'
        )
        if labelled - tx >= MIN_LABEL_GAP and tx - LABEL_W >= MIN_LABEL_GAP:
            labelled = tx
            out.append(
                f'<text x="{tx:.1f}" y="{TOP - 10}" class="tl-threshold-label">'
                f"{escape(_span(t))}</text>"
            )
    out.append(f'<text x="8" y="{TOP - 10}" class="tl-legend">alert thresholds</text>')
    out.append(
        f'<line x1="{LABEL_W}" y1="{TOP - 6}" x2="{LABEL_W}" y2="{bottom + 5}" class="tl-today"/>'
    )
    out.append(f'<text x="{LABEL_W}" y="{bottom + 18}" class="tl-today-label">today</text>')
    step = 14 * DAY if span > 60 * DAY else 7 * DAY
    tick = now + step
    while tick < now + span - step / 3:
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 5}" class="tl-axis"/>'
        )
        out.append(f'<text x="{tx:.1f}" y="{bottom + 18}" class="tl-tick">{_day(tick)}</text>')
        tick += step
    out.append(
        f'<line x1="{LABEL_W}" y1="{bottom}" x2="{LABEL_W + PLOT_W}" y2="{bottom}" '
        'class="tl-axis"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _span(seconds: float) -> str:
    """A threshold as people say it: "30d", "12h"."""
    if seconds >= DAY and seconds % DAY == 0:
        return f"{seconds / DAY:.0f}d"
    return human_left(seconds)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


__all__ = ["STATE_OK", "timeline_svg"]
