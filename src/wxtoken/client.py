"""WebexClient: the only module that speaks HTTP to Webex (through httpx2).

Every exchange is bounded three ways: connect and read timeouts, a total deadline (a server that
trickles one byte per read defeats read timeouts alone) and a 1 MiB body cap, applied to the
decoded body so a gzip bomb stops at the cap. Redirects are never followed (a 307 would replay
the client secret elsewhere) and TLS verification cannot be turned off.

Retries: a grant says whether it may be sent again (`Grant.replay_safe`). The code exchange is
sent exactly once; refreshes retry transient failures (network, 408, 429, 5xx, server_error)
with capped exponential backoff and full jitter, honouring Retry-After as a floor, inside a
budget of attempts and seconds.

I/O sits behind an httpx2 transport: tests pass the emulator's in-process transport instead of
patching anything. One client keeps its connections alive for the lifetime of its owner (a
TokenManager, or the keeper for every profile of one base URL), and the TLS context is built
once per process, because loading a CA bundle costs more CPU than a whole refresh.
"""

from __future__ import annotations

import base64
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx2

from . import _local, oauth, oauth_errors
from ._version import __version__
from .device import DEVICE_AUTHORIZE_PATH, DEVICE_GRANT_TYPE
from .errors import (
    MalformedResponse,
    WebexUnavailable,
    WxtokenError,
    clean_server_text,
    redact,
)
from .grants import (
    SECRET_FIELDS,
    BuildsRequest,
    ClientCredentials,
    DeviceAuthorization,
    Grant,
)
from .token import Token
from .transport import DEADLINE_EXTENSION, DeadlineExceeded
from .transport.errors import CertificateRejected, ProxyFailure

from .network import network_failure  # isort: skip

if TYPE_CHECKING:
    from .profile import Profile

# `wxtoken --debug`: one line per request (method, address without query, status, time,
# trackingId). Nothing else: a header, a body or a query could carry a secret.
_debug = logging.getLogger("wxtoken.http")
_USER_AGENT = f"wxtoken/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How a replay-safe grant is retried: attempts and seconds in all, and the backoff curve
    (full jitter between 0 and min(cap, base * 2**n)); Retry-After is honoured as a floor."""

    attempts: int = _local.RETRY_ATTEMPTS
    budget: float = _local.RETRY_BUDGET
    base: float = 0.5
    cap: float = 8.0


@dataclass(frozen=True)
class Response:
    """An HTTP answer as it came: status, lower-case headers, the body (capped) and its type."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    content_type: str | None


class WebexClient:
    """Sends grants and API calls to one Webex base URL; safe to share between threads.

    Requests go straight to the transport (no httpx2.Client in between: it would double the
    CPU of a refresh), each with an absolute deadline in its extensions.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx2.BaseTransport | None = None,
        connect_timeout: float = _local.HTTP_CONNECT_TIMEOUT,
        read_timeout: float = _local.HTTP_READ_TIMEOUT,
        deadline: float = _local.DEFAULT_HTTP_DEADLINE,
        max_body: int = oauth.MAX_BODY,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        settings: _local.Settings | None = None,
        profile: Profile | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.max_body = max_body
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._own_transport = transport is None
        self._via = ""  # the debug log's note of the proxy in use (never its credentials)
        if transport is None:
            from .network import Network

            # The proxy and trust rules of these settings and this profile (its --proxy and
            # --ca-file), the same for every client wxtoken builds (network.py).
            net = Network.of(settings if settings is not None else _local.Settings(), profile)
            net.check(self.base_url)  # an unusable proxy or CA setting: one line now
            proxy = net.proxy_for(self.base_url)
            self._via = f" via proxy {proxy.url}" if proxy else ""
            transport = net.transport(
                connect_timeout=connect_timeout, read_timeout=read_timeout, deadline=deadline
            )
        self._transport = transport
        self._timeout = {"connect": connect_timeout, "read": read_timeout, "write": read_timeout}
        self._urls: dict[str, httpx2.URL] = {}  # parsed once per path: parsing costs CPU

    def __repr__(self) -> str:
        return f"WebexClient({self.base_url!r})"

    def close(self) -> None:
        if self._own_transport:
            self._transport.close()

    def __enter__(self) -> WebexClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one exchange ---------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, str] | None) -> httpx2.URL:
        if params:
            return httpx2.URL(f"{self.base_url}{path}", params=dict(params))
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx2.URL(f"{self.base_url}{path}")
        return url

    def _send(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        bearer: str | None = None,
        basic: ClientCredentials | None = None,
        params: Mapping[str, str] | None = None,
        content: tuple[bytes, str] | None = None,
    ) -> Response:
        headers = {
            "User-Agent": _USER_AGENT,
            "TrackingID": f"WXTOKEN_{uuid.uuid4()}",
            "Accept": "application/json",
        }
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        elif basic is not None:
            pair = f"{basic.client_id}:{basic.client_secret}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        body = None
        if form:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif content is not None:
            body, headers["Content-Type"] = content
        start = time.monotonic()
        url = self._url(path, params)
        request = httpx2.Request(
            method,
            url,
            headers=headers,
            content=body,
            extensions={"timeout": self._timeout, DEADLINE_EXTENSION: start + self.deadline},
        )
        try:
            resp = self._transport.handle_request(request)
            try:
                answer = self._read(resp, start)
            finally:
                resp.close()
            if _debug.isEnabledFor(logging.DEBUG):
                _debug.debug(
                    "%s %s%s -> %d in %.0f ms (trackingId %s)",
                    method,
                    self._where(url),
                    self._via,
                    answer.status,
                    (time.monotonic() - start) * 1000,
                    clean_server_text(answer.headers.get("trackingid", "none"), 80),
                )
            return answer
        except WxtokenError:
            raise
        except httpx2.TimeoutException as exc:
            if isinstance(exc, DeadlineExceeded):
                raise WebexUnavailable(
                    f"Webex took over {self.deadline:g} s to answer ({self._where(url)})",
                    fix="check the network or proxy settings, then retry",
                ) from None
            raise WebexUnavailable(
                f"Webex did not answer in time ({type(exc).__name__} on {self._where(url)})",
                fix="check the network or proxy settings, then retry",
            ) from None
        except (ProxyFailure, CertificateRejected) as exc:
            raise network_failure(exc, self._where(url)) from None
        except httpx2.DecodingError:
            raise MalformedResponse(
                "Webex's response could not be decoded (bad compression)",
                fix="retry later",
            ) from None
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as exc:
            raise WebexUnavailable(
                f"cannot reach Webex at {self._where(url)} ({type(exc).__name__})",
                fix="check the network, DNS and proxy settings (HTTPS_PROXY), then retry",
            ) from None

    def _read(self, resp: httpx2.Response, start: float) -> Response:
        """The body, capped after decoding (a gzip bomb stops at the cap)."""
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise MalformedResponse(
                f"Webex's response is too large ({declared} bytes; the limit is {self.max_body})",
                fix="retry later; a proxy or outage page may be in the way",
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise MalformedResponse(
                    f"Webex's response exceeded {self.max_body} bytes",
                    fix="retry later; a proxy or outage page may be in the way",
                )
            # StdlibTransport enforces the deadline itself; this covers any other transport.
            if time.monotonic() - start > self.deadline:
                raise WebexUnavailable(
                    f"Webex took over {self.deadline:g} s to answer",
                    fix="check the network, then retry",
                )
            chunks.append(chunk)
        return Response(
            status=resp.status_code,
            headers={k.lower(): v for k, v in resp.headers.items()},
            body=b"".join(chunks),
            content_type=resp.headers.get("content-type"),
        )

    def _where(self, url: httpx2.URL) -> str:
        """Scheme, host and path only: a query could carry something not meant for logs."""
        return f"{url.scheme}://{url.netloc.decode()}{url.path}"

    def _error(self, resp: Response, grant: str, sent: tuple[str, ...]) -> WxtokenError:
        if 300 <= resp.status < 400:
            target = clean_server_text(redact(resp.headers.get("location", "nowhere"), sent), 80)
            return MalformedResponse(
                f"Webex answered HTTP {resp.status} redirecting to {target}; wxtoken does not "
                "follow redirects with credentials",
                fix="check the profile's base URL (`wxtoken profile show`)",
            )
        info = oauth_errors.read_error(resp.status, resp.body, resp.headers, sent)
        retry_after = oauth_errors.parse_retry_after(resp.headers.get("retry-after"), self._clock())
        return oauth_errors.classify_error(info, grant=grant, retry_after=retry_after)

    # --- token endpoint -------------------------------------------------------------------

    def exchange(self, grant: Grant, credentials: ClientCredentials) -> Token:
        """Send a grant to the token endpoint and return the token Webex issued.

        Retried within the retry policy only if the grant says a replay is safe.
        """
        if grant.replay_safe:
            return self._with_retries(lambda: self._exchange_once(grant, credentials))
        return self._exchange_once(grant, credentials)

    def _exchange_once(self, grant: Grant, credentials: ClientCredentials) -> Token:
        requested_at = self._clock()  # before sending: network delay only shortens our expiry
        if isinstance(grant, BuildsRequest):
            own = grant.request(credentials)
            content = (own.content, own.content_type)
            resp = self._send("POST", grant.path, bearer=own.bearer, content=content)
            sent = own.secrets
        else:
            basic = credentials if grant.basic_auth else None
            form = grant.form(credentials)
            resp = self._send("POST", grant.path, form=form, basic=basic)
            sent = (credentials.client_secret, *(v for k, v in form.items() if k in SECRET_FIELDS))
        if resp.status != 200:
            raise self._error(resp, grant.grant_type, sent)
        data = oauth.parse_json_object(resp.body, resp.content_type)
        oauth.check_token_body(data)
        return grant.parse(data, requested_at)

    def _with_retries(self, attempt: Callable[[], Token]) -> Token:
        policy = self.retry
        started = time.monotonic()
        last: WebexUnavailable | None = None
        for n in range(policy.attempts):
            try:
                return attempt()
            except WebexUnavailable as exc:
                last = exc
            if n + 1 >= policy.attempts:
                break
            backoff = random.uniform(0, min(policy.cap, policy.base * 2**n))
            wait = max(backoff, last.retry_after or 0.0)
            left = policy.budget - (time.monotonic() - started)
            if wait > left:
                if last.retry_after is not None and last.retry_after > left:
                    raise WebexUnavailable(
                        f"{last.message}; Webex asks to wait {int(last.retry_after)} s, beyond "
                        f"the {policy.budget:g} s retry budget",
                        fix=f"try again after {int(last.retry_after)} s",
                        tracking_id=last.tracking_id,
                        retry_after=last.retry_after,
                    ) from None
                break
            self._sleep(wait)
        assert last is not None
        raise last

    def device_authorize(self, client_id: str, scopes: tuple[str, ...]) -> DeviceAuthorization:
        """Start a device sign-in (`POST /v1/device/authorize`, no client authentication).

        Sent once: a lost answer only leaves an unused code at Webex, and the person runs the
        command again.
        """
        form = {"client_id": client_id, "scope": " ".join(scopes)}
        resp = self._send("POST", DEVICE_AUTHORIZE_PATH, form=form)
        if resp.status != 200:
            raise self._error(resp, DEVICE_GRANT_TYPE, ())
        data = oauth.parse_json_object(resp.body, resp.content_type)
        try:
            return DeviceAuthorization.parse(data)
        except ValueError as exc:
            raise MalformedResponse(
                f"Webex's device authorization answer is unusable ({exc})",
                fix="retry later; a proxy or outage page may be in the way",
            ) from None

    # --- REST calls -----------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        access_token: str,
        *,
        params: Mapping[str, str] | None = None,
        content: tuple[bytes, str] | None = None,
    ) -> Response:
        """Any REST call with a bearer token, its answer as it came (`wxtoken api`); sent once,
        since a POST is not safe to repeat."""
        return self._send(method, path, bearer=access_token, params=params, content=content)

    def get_json(self, path: str, access_token: str) -> dict[str, Any]:
        resp = self._send("GET", path, bearer=access_token)
        if resp.status != 200:
            raise self._error(resp, "api", (access_token,))
        return oauth.parse_json_object(resp.body, resp.content_type)

    def people_me(self, access_token: str) -> dict[str, Any]:
        return self.get_json("/v1/people/me", access_token)

    def token_expiry(self, access_token: str) -> float:
        """Epoch seconds at which Webex says this access token expires."""
        data = self.get_json("/v1/authorizations/tokenExpiry", access_token)
        exp = data.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise MalformedResponse("Webex's tokenExpiry answer has no numeric exp")
        return float(exp) / 1000.0

    def revoke_client_grants(self, access_token: str, client_id: str) -> None:
        resp = self._send(
            "DELETE", "/v1/authorizations", bearer=access_token, params={"clientId": client_id}
        )
        if resp.status not in (200, 204):
            raise self._error(resp, "api", (access_token,))
