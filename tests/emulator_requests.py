"""Webex requests the emulator tests send, over any httpx2 client: the subprocess emulator over
loopback HTTP, or the in-process one through its transport (tests/emulator_inproc.py)."""

from __future__ import annotations

import base64
import re
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx2

TOKEN_RE = re.compile(r"^[A-Za-z0-9+/]{64}_PF84_[0-9a-f-]{36}$")
SCOPES = "spark:kms spark:people_read identity:tokens_read identity:tokens_write"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Target(Protocol):
    """What the helpers need of an emulator handle (both test helpers provide it)."""

    info: dict[str, Any]
    redirect_uri: str

    @property
    def base_url(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...


def authorize(e: Target, http: httpx2.Client, **over: str | None) -> httpx2.Response:
    params: dict[str, str | None] = {
        "client_id": e.client_id,
        "response_type": "code",
        "redirect_uri": e.redirect_uri,
        "scope": SCOPES,
        "state": "S1",
    }
    params.update(over)
    return http.get(
        f"{e.base_url}/v1/authorize", params={k: v for k, v in params.items() if v is not None}
    )


def get_code(e: Target, http: httpx2.Client, **over: str | None) -> str:
    r = authorize(e, http, **over)
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["code"][0]


def token_req(e: Target, http: httpx2.Client, **form: str) -> httpx2.Response:
    data = {"client_id": e.client_id, "client_secret": e.client_secret}
    data.update(form)
    return http.post(f"{e.base_url}/v1/access_token", data=data)


def login(e: Target, http: httpx2.Client, **over: str | None) -> dict[str, Any]:
    code = get_code(e, http, **over)
    r = token_req(e, http, grant_type="authorization_code", code=code, redirect_uri=e.redirect_uri)
    assert r.status_code == 200, r.text
    return dict(r.json())


def refresh(e: Target, http: httpx2.Client, rt: str) -> httpx2.Response:
    return token_req(e, http, grant_type="refresh_token", refresh_token=rt)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def envelope_of(r: httpx2.Response) -> str:
    """The description of a Webex error envelope, after checking its shape and TrackingID."""
    body = r.json()
    assert set(body) >= {"message", "errors", "trackingId"}
    assert r.headers["trackingid"] == body["trackingId"]
    return str(body["errors"][0]["description"])


def org_b64(e: Target) -> str:
    raw = f"ciscospark://us/ORGANIZATION/{e.info['org_id']}".encode()
    return base64.b64encode(raw).decode().rstrip("=")
