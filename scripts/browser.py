#!/usr/bin/env python3
"""A scripted browser for demos and end-to-end tests: `BROWSER="python3 scripts/browser.py %s"`.

It does what a person does in a real browser: opens the sign-in URL, presses Accept (or Decline
with WXTOKEN_BROWSER_DECISION=deny) on the consent page, and follows the redirect to wherever it
points, normally wxtoken's loopback listener. Standard library only; loopback addresses only.

Test knobs (environment):
  WXTOKEN_BROWSER_LOOPBACK=::1   reach `localhost` through [::1] (or 127.0.0.1), as a browser
                                 that tries that address first for the name
  WXTOKEN_BROWSER_LOG=FILE       append what the last page said, one JSON line:
                                 {"status": 200, "title": "...", "text": "..."}
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


class _Form(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a.get("name", "")] = a.get("value", "")


def _loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"browser.py: refusing non-loopback address {host}")


def _through(url: str) -> str:
    """The address to connect to: `localhost` pinned to one loopback address if asked."""
    parts = urllib.parse.urlsplit(url)
    pinned = os.environ.get("WXTOKEN_BROWSER_LOOPBACK", "")
    if parts.hostname != "localhost" or not pinned:
        return url
    host = f"[{pinned}]" if ":" in pinned else pinned
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def fetch(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None):
    _loopback(url)
    try:
        # wxtoken answers the redirect only once the tokens are stored: allow for the exchange.
        resp = opener.open(urllib.request.Request(_through(url), data=data), timeout=120)
        return (
            resp.status,
            {k.lower(): v for k, v in resp.headers.items()},
            resp.read().decode("utf-8", "replace"),
        )
    except urllib.error.HTTPError as exc:
        return (
            exc.code,
            {k.lower(): v for k, v in exc.headers.items()},
            exc.read().decode("utf-8", "replace"),
        )
    except OSError as exc:  # refused, reset, timed out: what a browser shows as an error page
        reason = getattr(exc, "reason", exc)
        return 0, {}, f"<h1>cannot connect</h1><p>{type(reason).__name__}</p>"


def report(status: int, body: str) -> None:
    """Say what the page said: on stderr, and in WXTOKEN_BROWSER_LOG if set."""
    title = body.split("<h1>")[1].split("</h1>")[0] if "<h1>" in body else f"HTTP {status}"
    title = html.unescape(title)
    print(f"browser.py: {title}", file=sys.stderr)
    log = os.environ.get("WXTOKEN_BROWSER_LOG")
    if log:
        text = html.unescape(re.sub(r"<[^>]*>", " ", body.split("</h1>", 1)[-1]))
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"status": status, "title": title, "text": " ".join(text.split())}))
            fh.write("\n")


def main() -> int:
    url = sys.argv[1]
    decision = os.environ.get("WXTOKEN_BROWSER_DECISION", "approve")
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(5):
        status, headers, body = fetch(opener, url)
        if status in (301, 302, 303, 307):
            url = urllib.parse.urljoin(url, headers["location"])
            continue
        form = _Form()
        form.feed(body)
        if status == 200 and form.action is not None and "txn" in form.fields:
            fields = dict(form.fields, decision=decision)
            action = urllib.parse.urljoin(url, form.action)
            status, headers, body = fetch(opener, action, urllib.parse.urlencode(fields).encode())
            if status in (301, 302, 303):
                url = urllib.parse.urljoin(action, headers["location"])
                continue
        report(status, body)
        return 0 if 0 < status < 500 else 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
