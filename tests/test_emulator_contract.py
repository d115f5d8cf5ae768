"""Contract: the in-process transport answers exactly as the subprocess HTTP server does.

One `wxtoken emulator --config` process and one in-process emulator built from the same config
run the same scenarios; every answer is reduced to what a client relies on (status, the set of
header names, the values of the headers that carry meaning, and the body with random values
such as tokens and tracking ids replaced by placeholders) and the two lists must be equal.
Wire faults are compared by what the client observes: the exception it gets, and the ledger.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest

from tests.conftest import Emulator as Subprocess
from tests.conftest import start_emulator
from tests.emulator_inproc import BASE_URL, POSTMAN_URI
from tests.emulator_requests import DEVICE_GRANT, SCOPES, bearer
from wxtoken.emulator import EmulatorTransport, Policy, SystemClock
from wxtoken.emulator.model import DEFAULT_SCOPES
from wxtoken.emulator.server import EmulatorOptions, build

ORG = "1eb65fdf-9643-417f-9974-ad72cae0e10f"
CLIENT_ID = "C" + "ab" * 32
CLIENT_SECRET = "5e" * 32
APP_ID = "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2NvbnRyYWN0"
APP_CLIENT_ID = "C" + "cd" * 32
APP_SECRET = "7a" * 32
CONFIG = f"""
[policy]
auto_approve = true

[[users]]
uuid = "0f0e0d0c-0b0a-4909-8807-060504030201"
email = "admin@example.com"
display_name = "Avery Admin"
org_id = "{ORG}"
roles = ["Full_Admin"]

[[users]]
uuid = "1f1e1d1c-1b1a-4919-8817-161514131211"
email = "user@example.com"
display_name = "Uma User"
org_id = "{ORG}"
roles = []

[[integrations]]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_uris = []
scopes = {json.dumps(list(DEFAULT_SCOPES))}
name = "Call recorder (emulated)"

[[service_apps]]
application_id = "{APP_ID}"
client_id = "{APP_CLIENT_ID}"
client_secret = "{APP_SECRET}"
scopes = ["spark-admin:recordings_read", "spark:kms"]
authorized_org_ids = ["{ORG}"]
"""

TOKEN = re.compile(r"[A-Za-z0-9+/]{64}_PF84_[0-9a-f-]{36}")
TRACKING = re.compile(r"ROUTER_[0-9A-F-]{36}")
TXN = re.compile(r'name="txn" value="[^"]+"')
USER_CODE = re.compile(r'(userCode=|value=")\d{6}')
VOLATILE = {"exp", "device_code", "user_code", "id", "created", "now", "offset", "at", "seq"}
VOLATILE_SUFFIX = "_fp"  # ledger fingerprints of random tokens
MEANINGFUL = ("content-type", "trackingid", "location", "retry-after", "allow", "transfer-encoding")


@dataclass
class Side:
    name: str
    http: httpx2.Client
    info: dict[str, Any] = field(repr=False)  # holds secrets
    redirect_uri: str
    base_url: str
    seen: list[tuple[str, Any]] = field(default_factory=list, repr=False)

    def canon(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: "<volatile>" if k in VOLATILE or k.endswith(VOLATILE_SUFFIX) else self.canon(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.canon(v) for v in value]
        if isinstance(value, str):
            text = unquote(value).replace(self.base_url, "<base>")
            text = TOKEN.sub("<token>", text)
            text = TRACKING.sub("<tracking>", text)
            text = USER_CODE.sub(r"\1<user code>", text)
            return TXN.sub('name="txn" value="<txn>"', text)
        return value

    def observe(self, label: str, r: httpx2.Response) -> httpx2.Response:
        ctype = r.headers.get("content-type", "")
        try:
            body = self.canon(r.json()) if "json" in ctype else self.canon(r.text)
        except httpx2.ResponseNotRead:
            body = "<streaming>"
        except ValueError:
            body = self.canon(r.content.decode("utf-8", "replace"))
        self.seen.append(
            (
                label,
                {
                    "status": r.status_code,
                    "reason": r.reason_phrase,
                    "header names": sorted(r.headers.keys()),
                    "headers": {h: self.canon(r.headers.get(h)) for h in MEANINGFUL},
                    "body": body,
                },
            )
        )
        return r

    def send(self, label: str, method: str, path: str, **kw: Any) -> httpx2.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        return self.observe(label, self.http.request(method, url, **kw))

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, f"{self.base_url}/_emulator/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def token(self, label: str, **form: str) -> httpx2.Response:
        data = dict({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, **form)
        return self.send(label, "POST", "/v1/access_token", data=data)

    def code(self, **over: str) -> str:
        params = {"client_id": CLIENT_ID, "response_type": "code", "scope": SCOPES}
        params.update(redirect_uri=self.redirect_uri, state="S1", **over)
        r = self.send("authorize for a code", "GET", "/v1/authorize", params=params)
        return str(httpx2.URL(r.headers["location"]).params["code"])

    def login(self, **over: str) -> dict[str, Any]:
        code = self.code(**over)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        return dict(self.token("exchange", **form).json())


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "emulator.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def server(config: Path) -> Iterator[Subprocess]:
    proc = start_emulator("--config", str(config))
    yield proc
    proc.stop()


@pytest.fixture
def sides(server: Subprocess, config: Path) -> Iterator[tuple[Side, Side]]:
    opts = EmulatorOptions(
        config=config, control=True, redirect_uris=[server.redirect_uri, POSTMAN_URI]
    )
    emu, seed = build(opts, clock=SystemClock())
    with (
        httpx2.Client(timeout=10, follow_redirects=False, trust_env=False) as over_http,
        httpx2.Client(timeout=10, transport=EmulatorTransport(emu, control=True)) as in_process,
    ):
        wire = Side("http", over_http, server.info, server.redirect_uri, server.base_url)
        local = Side("in-process", in_process, seed, server.redirect_uri, BASE_URL)
        for side in (wire, local):
            side.control("POST", "reset")
            side.control("DELETE", "faults")
            side.control("POST", "policy", dict(asdict(Policy()), auto_approve=True))
            side.control("POST", "consent-user", {"email": "admin@example.com"})
        yield wire, local


def same(sides: tuple[Side, Side], scenario: Callable[[Side], None]) -> None:
    for side in sides:
        scenario(side)
    wire, local = sides
    assert [label for label, _ in local.seen] == [label for label, _ in wire.seen]
    for (label, got), (_, want) in zip(local.seen, wire.seen, strict=True):
        assert got == want, f"{label}: in-process differs from HTTP"


def test_routing(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        s.send("unknown path", "GET", "/v2/nothing")
        s.send("wrong method", "PUT", "/v1/access_token")
        s.send("trailing slash", "GET", "/v1/people/me/?x=1")
        s.send("discovery", "GET", "/v1/.well-known/openid-configuration")
        s.send("HEAD of a GET route", "HEAD", "/v1/.well-known/openid-configuration")
        s.send("control policy", "GET", "/_emulator/policy")

    same(sides, run)


def test_authorize_and_consent(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        base = {"client_id": CLIENT_ID, "response_type": "code", "scope": SCOPES, "state": "S1"}
        base["redirect_uri"] = s.redirect_uri
        for label, over in (
            ("unknown client", {"client_id": "Cnobody"}),
            ("unregistered redirect", {"redirect_uri": "http://127.0.0.1:1/evil"}),
            ("implicit grant", {"response_type": "token"}),
            ("unregistered scope", {"scope": "spark:kms not:registered"}),
            ("bad PKCE method", {"code_challenge": "x" * 43, "code_challenge_method": "S512"}),
            ("prompt=none", {"prompt": "none"}),
            ("auto-approved", {}),
        ):
            s.send(label, "GET", "/v1/authorize", params=dict(base, **over))
        s.send("redirect omitted", "GET", "/v1/authorize", params={"client_id": CLIENT_ID})
        s.control("POST", "policy", {"auto_approve": False})
        page = s.send("consent page", "GET", "/v1/authorize", params=base)
        txn = re.search(r'name="txn" value="([^"]+)"', page.text)
        assert txn is not None
        decision = {"txn": txn.group(1), "decision": "approve"}
        s.send("accept", "POST", "/v1/authorize/consent", data=decision)
        s.send("accept again", "POST", "/v1/authorize/consent", data=decision)

    same(sides, run)


def test_token_endpoint(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        s.send("JSON body", "POST", "/v1/access_token", json={"grant_type": "refresh_token"})
        s.token("no credentials", client_id="", client_secret="")
        s.token("wrong secret", grant_type="refresh_token", refresh_token="x", client_secret="0")
        s.token("unsupported grant", grant_type="password")
        headers = {"TrackingID": "MINE_1"}
        s.send("tracking echo", "POST", "/v1/access_token", data={}, headers=headers)
        t = s.login()
        s.token("refresh", grant_type="refresh_token", refresh_token=t["refresh_token"])
        s.token("bogus refresh", grant_type="refresh_token", refresh_token="bogus")
        code = s.code()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": s.redirect_uri}
        s.token("wrong redirect", **dict(form, redirect_uri=s.redirect_uri + "x"))
        s.token("exchange", **form)
        s.token("code reused", **form)
        s.send(
            "Basic disagreeing with the form",
            "POST",
            "/v1/access_token",
            auth=(CLIENT_ID, CLIENT_SECRET),
            data=dict(form, client_id="Cother"),
        )
        s.control("POST", "policy", {"rfc_error_keys": True, "invalid_client_status": 400})
        s.token("RFC error keys", grant_type="refresh_token", refresh_token="x", client_secret="0")

    same(sides, run)


def test_resources(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        t = s.login()
        auth = bearer(t["access_token"])
        s.send("people/me without a token", "GET", "/v1/people/me")
        s.send("people/me", "GET", "/v1/people/me", headers=auth)
        s.send("tokenExpiry", "GET", "/v1/authorizations/tokenExpiry", headers=auth)
        s.send("authorizations, no query", "GET", "/v1/authorizations", headers=auth)
        params = {"personEmail": "admin@example.com"}
        s.send("authorizations", "GET", "/v1/authorizations", params=params, headers=auth)
        s.send("delete unknown", "DELETE", "/v1/authorizations/nope", headers=auth)
        bot = bearer(s.info["bot_token"])
        s.send("message", "POST", "/v1/messages", json={"roomId": "R", "text": "hi"}, headers=bot)
        s.send("message without room", "POST", "/v1/messages", json={"text": "x"}, headers=bot)
        s.send("messages kept", "GET", "/_emulator/messages")
        mint = {"clientId": APP_CLIENT_ID, "clientSecret": APP_SECRET, "targetOrgId": ORG}
        minter = s.login(scope="spark:applications_token spark:people_read")
        app_auth = bearer(minter["access_token"])
        url = f"/v1/applications/{APP_ID}/token"
        s.send("mint", "POST", url, json=mint, headers=app_auth)
        s.send("mint, bad secret", "POST", url, json=dict(mint, clientSecret="x"), headers=app_auth)
        s.send("mint, other org", "POST", url, json=dict(mint, targetOrgId="o"), headers=app_auth)
        s.send("mint, unknown app", "POST", "/v1/applications/x/token", json=mint, headers=app_auth)
        s.send("mint, scope missing", "POST", url, json=mint, headers=auth)
        by_client = {"clientId": CLIENT_ID}
        s.send("revoke all", "DELETE", "/v1/authorizations", params=by_client, headers=auth)
        s.send("people/me once revoked", "GET", "/v1/people/me", headers=auth)
        s.control("POST", "consent-user", {"email": "user@example.com"})
        plain = bearer(s.login()["access_token"])
        s.send("not an admin", "GET", "/v1/authorizations", params=params, headers=plain)

    same(sides, run)


def test_device_grant(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        s.control("POST", "policy", {"auto_approve": False})
        form = {"client_id": CLIENT_ID, "scope": "spark:kms"}
        s.send("device, unknown client", "POST", "/v1/device/authorize", data={"client_id": "x"})
        dev = s.send("device authorize", "POST", "/v1/device/authorize", data=form).json()
        poll = {"grant_type": DEVICE_GRANT, "device_code": dev["device_code"]}
        creds = (CLIENT_ID, CLIENT_SECRET)
        s.send("pending", "POST", "/v1/device/token", data=poll, auth=creds)
        s.send("too fast", "POST", "/v1/device/token", data=poll, auth=creds)
        s.send("verify page", "GET", dev["verification_uri_complete"].replace(s.base_url, ""))
        decision = {"userCode": dev["user_code"], "decision": "approve"}
        s.send("approve", "POST", "/v1/device/verify", data=decision)
        s.send("tokens", "POST", "/v1/device/token", data=poll, auth=creds)

    same(sides, run)


def test_answer_faults_and_control(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        t = s.login()
        refresh = {"grant_type": "refresh_token", "refresh_token": t["refresh_token"]}
        for label, fault in (
            ("429 with Retry-After", {"kind": "status", "status": 429, "retry_after": "7"}),
            ("503, empty", {"kind": "status", "status": 503, "body": "empty"}),
            ("a status without a phrase", {"kind": "status", "status": 599}),
            ("HTML gateway page", {"kind": "html"}),
            ("malformed JSON", {"kind": "malformed"}),
            ("truncated JSON", {"kind": "truncated"}),
            ("no access token", {"kind": "incomplete"}),
            ("2 MiB", {"kind": "huge"}),
            ("redirect", {"kind": "redirect", "status": 302, "body": "http://127.0.0.1:9/x"}),
        ):
            s.send(f"arm {label}", "POST", "/_emulator/faults", json=fault)
            s.token(label, **refresh)
        s.send(
            "arm any endpoint",
            "POST",
            "/_emulator/faults",
            json={"kind": "status", "endpoint": "*"},
        )
        s.send("armed faults", "GET", "/_emulator/faults")
        s.send("fault on people/me", "GET", "/v1/people/me")
        s.send("bad fault", "POST", "/_emulator/faults", json={"kind": "nope"})
        s.send("bad policy", "POST", "/_emulator/policy", json={"rotate": "sometimes"})
        s.send("bad clock", "POST", "/_emulator/clock", json={"advance": "x"})
        s.send("clock", "POST", "/_emulator/clock", json={"advance": 10})
        s.send("revoke", "POST", "/_emulator/revoke", json={"token": t["refresh_token"]})
        s.send("block unknown", "POST", "/_emulator/block", json={"client_id": "x"})
        s.send("device unknown", "POST", "/_emulator/device", json={"user_code": "0"})
        s.send("ledger", "GET", "/_emulator/ledger?since=0")
        s.send("reset", "POST", "/_emulator/reset")

    same(sides, run)


def test_wire_faults_raise_the_same_exceptions(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        s.control("POST", "policy", {"rotate": "always"})
        t = s.login()
        form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        form.update(grant_type="refresh_token", refresh_token=t["refresh_token"])
        for kind in ("drop", "drop_after_commit"):
            s.control("POST", "faults", {"kind": kind})
            with pytest.raises(httpx2.HTTPError) as raised:
                s.http.post(f"{s.base_url}/v1/access_token", data=form)
            s.seen.append((kind, type(raised.value).__name__))
            ledger = s.control("GET", "ledger?since=0")["entries"]
            s.seen.append((f"{kind}: ledger", s.canon(ledger[-2:])))
        s.token("the old refresh token, rotated by the lost answer", **form)
        s.control("POST", "faults", {"kind": "trickle", "delay": 0.2})
        url = f"{s.base_url}/v1/access_token"
        with s.http.stream("POST", url, data={}) as r:
            s.observe("trickle headers", r)
            s.seen.append(("trickle first byte", next(r.iter_bytes())))
        s.control("POST", "faults", {"kind": "trickle", "delay": 2})
        slow = httpx2.Timeout(5, read=0.3)
        with pytest.raises(httpx2.ReadTimeout), s.http.stream("POST", url, timeout=slow) as r:
            s.seen.append(("slow trickle first byte", r.read()))

    same(sides, run)


def test_delay_beyond_read_timeout_still_reaches_the_rules(sides: tuple[Side, Side]) -> None:
    def run(s: Side) -> None:
        t = s.login()
        form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        form.update(grant_type="refresh_token", refresh_token=t["refresh_token"])
        s.control("POST", "faults", {"kind": "delay", "delay": 0.6})
        with pytest.raises(httpx2.ReadTimeout):
            s.http.post(
                f"{s.base_url}/v1/access_token", data=form, timeout=httpx2.Timeout(5, read=0.2)
            )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            entries = s.control("GET", "ledger?since=0")["entries"]
            if entries[-1].get("grant_type") == "refresh_token":
                break
            time.sleep(0.05)
        s.seen.append(("handled after the timeout", s.canon(entries[-1])))

    same(sides, run)


def test_grant_causes(sides: tuple[Side, Side]) -> None:
    """The control API's causes over loopback HTTP (where --control is served) as in process."""
    admin, moved_to = "admin@example.com", "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5"

    def user(s: Side, label: str, **change: Any) -> None:
        s.send(label, "POST", "/_emulator/users", json=dict(change, email=admin))

    def run(s: Side) -> None:
        t = s.login()
        auth, rt = bearer(t["access_token"]), t["refresh_token"]
        user(s, "drop Full Admin", roles=[])
        s.send("people/me, no admin role", "GET", "/v1/people/me", headers=auth)
        params = {"personEmail": admin}
        s.send("admin endpoint", "GET", "/v1/authorizations", params=params, headers=auth)
        user(s, "move org", org_id=moved_to)
        s.send("people/me, moved", "GET", "/v1/people/me", headers=auth)
        moved = s.token("refresh, moved", grant_type="refresh_token", refresh_token=rt)
        s.seen.append(("new org suffix", moved.json()["access_token"].endswith(moved_to)))
        user(s, "password changed", password_changed=True)
        s.token("refresh, password changed", grant_type="refresh_token", refresh_token=rt)
        s.send("people/me, password changed", "GET", "/v1/people/me", headers=auth)
        user(s, "deactivate", active=False)
        query = {"client_id": CLIENT_ID, "response_type": "code", "scope": "spark:kms"}
        query.update(redirect_uri=s.redirect_uri, state="S1")
        s.send("sign-in, deactivated", "GET", "/v1/authorize", params=query)
        user(s, "reactivate", active=True)
        rt = s.login()["refresh_token"]
        s.send("token limit", "POST", "/_emulator/policy", json={"token_limit": 1})
        s.token("refresh over the limit", grant_type="refresh_token", refresh_token=rt)
        s.send("bad token limit", "POST", "/_emulator/policy", json={"token_limit": -1})
        s.send("block", "POST", "/_emulator/block", json={"client_id": CLIENT_ID})
        s.token("refresh, blocked", grant_type="refresh_token", refresh_token=rt)
        user(s, "nothing to change")
        s.send("unknown user", "POST", "/_emulator/users", json={"email": "x@y.z", "roles": []})
        s.send("ledger", "GET", "/_emulator/ledger?since=0")

    same(sides, run)


def test_service_app_authorization(sides: tuple[Side, Side]) -> None:
    """Authorizing and deauthorizing a service app per org, and creating one, through the
    control API: minting, and refreshing what was minted, answer the same over HTTP."""
    app_auth = {"application_id": APP_ID, "org_id": ORG}

    def run(s: Side) -> None:
        minter = bearer(s.login(scope="spark:applications_token")["access_token"])
        mint = {"clientId": APP_CLIENT_ID, "clientSecret": APP_SECRET, "targetOrgId": ORG}
        url = f"/v1/applications/{APP_ID}/token"
        minted = s.send("mint", "POST", url, json=mint, headers=minter).json()
        form = {"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]}
        creds = {"client_id": APP_CLIENT_ID, "client_secret": APP_SECRET}
        s.send("refresh minted", "POST", "/v1/access_token", data=dict(form, **creds))
        authz = "/_emulator/service-apps/authorization"
        s.send("deauthorize", "POST", authz, json=dict(app_auth, authorized=False))
        s.send("refresh, deauthorized", "POST", "/v1/access_token", data=dict(form, **creds))
        s.send("mint, deauthorized", "POST", url, json=mint, headers=minter)
        s.send("authorize, bad body", "POST", authz, json={"application_id": APP_ID})
        s.send("authorize, unknown app", "POST", authz, json=dict(app_auth, application_id="x"))
        s.send("authorize", "POST", authz, json=dict(app_auth, authorized=True))
        s.send("mint, authorized again", "POST", url, json=mint, headers=minter)
        s.send("ledger", "GET", "/_emulator/ledger?since=0")
        s.send("create, bad body", "POST", "/_emulator/service-apps", json={"scopes": "x"})
        new = s.control(
            "POST", "service-apps", {"scopes": ["spark:kms"], "authorized_org_ids": [ORG]}
        )
        own = {
            "clientId": new["client_id"],
            "clientSecret": new["client_secret"],
            "targetOrgId": ORG,
        }
        new_url = f"/v1/applications/{new['application_id']}/token"
        s.send("mint a created app", "POST", new_url, json=own, headers=minter)
        s.seen.append(("created app's client id", new["client_id"].startswith("C")))

    same(sides, run)
    statuses = {label: seen["status"] for label, seen in sides[1].seen if isinstance(seen, dict)}
    assert statuses["refresh minted"] == 200 and statuses["deauthorize"] == 200
    assert statuses["refresh, deauthorized"] == 400 and statuses["mint, deauthorized"] == 403
    assert statuses["authorize, bad body"] == statuses["authorize, unknown app"] == 400
    assert statuses["mint, authorized again"] == statuses["mint a created app"] == 200
