"""Calling a Webex REST API with a profile's token: what `wxtoken api` does, as a library call.

The token comes from the profile's manager (so single flight and refresh apply) and goes only
into the Authorization header, never into an argument, a log or the output. A 401 means the
token Webex holds is not the one we think: refresh once (unless another process already did)
and send again. Only the profile's own Webex is ever called: an absolute URL to another host,
given or found in a `Link` header, is refused, since it would carry the token elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .errors import OAuthError, UsageError, WxtokenError, clean_server_text, redact
from .reasons import Rejected

if TYPE_CHECKING:
    from .client import Response
    from .manager import TokenManager

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_PAGES = 1000  # a Link chain longer than this is a loop, not a list
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class ApiResult:
    """Webex's answer: its status, its JSON (None for an empty body) and its trackingId."""

    status: int
    data: Any = field(repr=False)
    tracking_id: str | None = None
    next_page: str | None = None  # the `Link: <...>; rel="next"` address, if Webex sent one


def split_target(base_url: str, target: str) -> tuple[str, dict[str, str]]:
    """(path, query) for `target`: a path under the profile's base URL, or an absolute URL on
    the same scheme and host; anything else would send the token to another server."""
    base = urlsplit(base_url)
    parts = urlsplit(target if "://" in target else "/" + target.lstrip("/"))
    if parts.scheme or parts.netloc:
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise UsageError(
                f"{clean_server_text(parts.scheme + '://' + parts.netloc, 80)} is not this "
                f"profile's Webex ({base.scheme}://{base.netloc}); the token goes nowhere else",
                fix="give a path such as /v1/people/me, or a URL on the profile's base URL",
            )
    path = parts.path or "/"
    prefix = base.path.rstrip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


def call(
    tm: TokenManager,
    method: str,
    target: str,
    *,
    fields: Mapping[str, str] | None = None,
    body: bytes | None = None,
    paginate: bool = False,
) -> ApiResult:
    """Call `method target` at the profile's Webex. `fields` are query parameters of a GET or
    DELETE and a JSON object body otherwise; `body` is a JSON body as given. With `paginate`,
    follow `Link: <...>; rel="next"` and return every page's `items` as one list."""
    method = method.upper()
    if method not in METHODS:
        raise UsageError(
            f"{method!r} is not an HTTP method wxtoken sends",
            fix="use -X GET|POST|PUT|PATCH|DELETE",
        )
    path, query = split_target(tm.profile.base_url, target)
    content = None
    if fields and method in ("GET", "DELETE"):
        query.update(fields)
    elif fields:
        content = (json.dumps(dict(fields)).encode(), "application/json")
    if body is not None:
        content = (body, "application/json")
    first = _send(tm, method, path, query, content)
    if not paginate:
        return first
    items = _items(first.data)
    response = first
    for _ in range(MAX_PAGES):
        nxt = response.next_page
        if nxt is None:
            return ApiResult(first.status, {"items": items}, first.tracking_id)
        path, query = split_target(tm.profile.base_url, nxt)
        response = _send(tm, method, path, query, None)
        items += _items(response.data)
    raise OAuthError(
        f"Webex's pages did not end after {MAX_PAGES} pages", fix="leave out --paginate"
    )


def _send(
    tm: TokenManager,
    method: str,
    path: str,
    query: dict[str, str],
    content: tuple[bytes, str] | None,
) -> ApiResult:
    token = tm.token().access_token
    resp = tm.client.call(method, path, token, params=query or None, content=content)
    if resp.status == 401:
        # Once: the stored token may be stale (revoked, or refreshed elsewhere); if the fresh
        # one is refused too, that answer stands.
        token = tm.refresh(Rejected(token)).token.access_token
        resp = tm.client.call(method, path, token, params=query or None, content=content)
    return _result(resp, token)


def _result(resp: Response, token: str) -> ApiResult:
    tracking = resp.headers.get("trackingid")
    data: Any = None
    if resp.body.strip():
        try:
            data = json.loads(resp.body)
        except ValueError:
            data = None
    if resp.status >= 400:
        said = resp.body.decode("utf-8", "replace")
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            said = data["message"]
        raise WxtokenError(
            f"Webex answered HTTP {resp.status}: {clean_server_text(redact(said, (token,)), 300)}",
            fix="check the path, the method and the profile's scopes (wxtoken verify)",
            tracking_id=tracking,
            status=resp.status,
        )
    if data is None and resp.body.strip():
        raise WxtokenError(
            f"Webex answered HTTP {resp.status} with a body that is not JSON "
            f"({resp.content_type or 'no content type'}, {len(resp.body)} bytes)",
            tracking_id=tracking,
        )
    found = _NEXT.search(resp.headers.get("link", ""))
    return ApiResult(resp.status, data, tracking, found[1] if found else None)


def _items(data: Any) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return list(data["items"])
    raise OAuthError(
        '--paginate needs a list answer ({"items": [...]}) and Webex sent something else',
        fix="leave out --paginate for this path",
    )
