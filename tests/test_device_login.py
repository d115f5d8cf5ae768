"""Device-code sign-in in process: wxtoken's polling loop against the emulator's device rules,
time on the emulator's ManualClock (the loop's sleeps advance it), so pace is exact.

What the person sees, what each of Webex's answers ends in (pending, slow_down, 429, denied,
expired, the token limit), the emulator's own rules (428 while pending, slow_down for a poll
faster than the interval and +5 s after it, helper redirect URIs, the same refresh token for
the same user and client), and headless detection for the browser sign-in.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx2
import pytest

from tests.cli_inproc import Cli, cli_fixture
from tests.conftest import assert_no_secret
from tests.emulator_inproc import InProc
from wxtoken.device import DEVICE_GRANT_TYPE, DEVICE_HELPER_REDIRECT_URIS
from wxtoken.errors import (
    ConsentDenied,
    InvalidGrant,
    MalformedResponse,
    OAuthError,
    RedirectUriRejected,
    UsageError,
    WebexUnavailable,
)
from wxtoken.grants import DeviceAuthorization
from wxtoken.login import browser
from wxtoken.login.device import require_granted, run_device_login, verification_address
from wxtoken.manager import TokenManager
from wxtoken.oauth_errors import PENDING, SLOW_DOWN, ErrorInfo, classify_error
from wxtoken.reasons import Forced
from wxtoken.results import LoginResult


@pytest.fixture
def c(tmp_path: Any) -> Iterator[Cli]:
    yield from cli_fixture(tmp_path)


class Person:
    """Approves (or denies) the pending code through the control API after `after` polls,
    while the loop's sleeps move the emulator's clock."""

    def __init__(self, e: InProc, *, after: int | None = 2, approve: bool = True) -> None:
        self.e, self.after, self.approve = e, after, approve
        self.sleeps: list[float] = []
        self.device_codes: set[str] = set()

    def polls(self) -> list[dict[str, Any]]:
        return [x for x in self.e.ledger() if x["endpoint"] == "device_token"]

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.device_codes |= set(self.e.emu.devices)
        self.e.clock.advance(seconds)
        if self.after is not None and len(self.polls()) >= self.after:
            for dev in list(self.e.emu.devices.values()):
                if dev.approved_by is None and not dev.denied:
                    self.e.control(
                        "POST", "device", {"user_code": dev.user_code, "approve": self.approve}
                    )


def sign_in(
    c: Cli, person: Person, err: io.StringIO | None = None, **kw: Any
) -> tuple[TokenManager, Callable[[], LoginResult], io.StringIO]:
    manager = c.app().manager("rec")
    out = err if err is not None else io.StringIO()

    def run() -> LoginResult:
        return run_device_login(
            manager,
            err=out,
            terminal=False,
            monotonic=c.e.clock.now,
            sleep=person.sleep,
            **kw,
        )

    return manager, run, out


def spacing(polls: list[dict[str, Any]]) -> list[float]:
    return [round(b["at"] - a["at"], 3) for a, b in itertools.pairwise(polls)]


def test_approved_sign_in_is_a_normal_grant(c: Cli) -> None:
    c.add_profile()
    person = Person(c.e, after=3)
    manager, run, err = sign_in(c, person)
    result = run()
    polls = person.polls()
    assert [p["status"] for p in polls] == [428, 428, 428, 200]
    assert spacing(polls) == [2.0, 2.0, 2.0], "exactly Webex's interval, never faster"
    text = err.getvalue()
    dev_answer = next(x for x in c.e.ledger() if x["endpoint"] == "device_authorize")
    assert dev_answer["status"] == 200
    assert "/v1/device/verify" in text and "valid for 5 min" in text
    assert "only if you started it here yourself" in text and "127.0.0.1" in text
    assert result.record.identity.email == "admin@example.com"
    events = manager.store.events("rec", ("login",), limit=1)
    assert events[0].detail["via"] == "device"
    # Afterwards it is an ordinary grant: refresh, status and export work unchanged.
    assert manager.refresh(Forced()).refreshed
    c("status", "-p", "rec", check=0)
    shown = list(c.outputs)  # everything before the export, which prints secrets on purpose
    exported = c("export", "-p", "rec", "--format", "json", check=0)
    assert '"refresh_token"' in exported.stdout
    token = manager.token()
    secrets = [
        c.e.client_secret,
        token.access_token,
        token.refresh_token or "",
        *person.device_codes,
    ]
    assert person.device_codes and all(secrets)
    assert_no_secret([text, *shown], secrets)


def test_code_shown_once_with_qr_on_a_terminal(c: Cli) -> None:
    c.add_profile()
    person = Person(c.e, after=1)
    _, _run, err = sign_in(c, person)
    run_device_login(
        c.app().manager("rec"),
        err=err,
        terminal=True,
        qr=True,
        monotonic=c.e.clock.now,
        sleep=person.sleep,
    )
    text = err.getvalue()
    assert "\u2580" in text or "\u2584" in text or "\u2588" in text, "a QR code drawn"
    assert "waiting for approval: " in text and "left" in text, "a live countdown"
    code = next(iter(text.split("enter the code\n\n  ")[1:]), "")[:6]
    assert code.isdigit() and len(code) == 6


def test_denied_is_exit_4(c: Cli) -> None:
    c.add_profile()
    person = Person(c.e, after=1, approve=False)
    _, run, _ = sign_in(c, person)
    with pytest.raises(ConsentDenied) as info:
        run()
    assert info.value.exit_code == 4 and "denied" in info.value.message
    assert "wxtoken login --device -p rec" in (info.value.fix or "")


def test_expiry_stops_polling_and_names_the_command(c: Cli) -> None:
    c.add_profile()
    c.e.policy(device_ttl=10, device_interval=2)
    person = Person(c.e, after=None)
    _, run, _ = sign_in(c, person)
    with pytest.raises(InvalidGrant) as info:
        run()
    polls = person.polls()
    assert len(polls) == 4 and all(p["status"] == 428 for p in polls)
    assert c.e.clock.now() - polls[0]["at"] <= 8, "no poll once the code is dead"
    fix = info.value.fix or ""
    assert info.value.exit_code == 4 and "expired" in info.value.message
    assert "wxtoken login --device -p rec" in fix
    assert all(uri in fix for uri in DEVICE_HELPER_REDIRECT_URIS)


def test_slow_down_adds_five_seconds_for_good(c: Cli) -> None:
    c.add_profile()
    c.e.fault("status", "device_token", status=400, error="slow_down", count=1)
    person = Person(c.e, after=4)
    _, run, err = sign_in(c, person)
    run()
    polls = person.polls()
    assert polls[0]["status"] == 400 and polls[0]["fault"] == "status"
    assert spacing(polls) == [7.0, 7.0, 7.0, 7.0]
    assert "every 7 s" in err.getvalue()


def test_429_retry_after_is_honoured(c: Cli) -> None:
    c.add_profile()
    c.e.fault("status", "device_token", status=429, retry_after="11", count=1)
    person = Person(c.e, after=2)
    _, run, _ = sign_in(c, person)
    run()
    polls = person.polls()
    assert polls[0]["status"] == 429
    assert [p["status"] for p in polls] == [429, 428, 200]
    assert spacing(polls) == [11.0, 2.0], "Retry-After, then the interval again"


def test_a_failing_webex_is_polled_again_until_the_code_ends(c: Cli) -> None:
    c.add_profile()
    c.e.fault("status", "device_token", status=503, count=2)
    person = Person(c.e, after=3)
    _, run, _ = sign_in(c, person)
    run()
    assert [p["status"] for p in person.polls()] == [503, 503, 428, 200]


def test_token_limit_has_its_own_message(c: Cli) -> None:
    c.add_profile()
    c.e.policy(token_limit=0)
    _, run, _ = sign_in(c, Person(c.e, after=1))
    with pytest.raises(OAuthError) as info:
        run()
    assert info.value.error == "tokenlimit_reached"
    assert "too many active tokens" in info.value.message
    assert "revoke" in (info.value.fix or "") and "login --device -p rec" in (info.value.fix or "")


def test_oidc_scopes_are_refused_before_any_request(c: Cli) -> None:
    c.add_profile(scopes="openid email spark:kms")
    result = c("login", "--device", "-p", "rec")
    assert result.returncode == 2
    assert "OpenID Connect" in result.stderr
    assert 'wxtoken profile set rec --scopes "spark:kms"' in result.stderr
    assert c.e.ledger() == []


def test_same_user_and_client_get_the_same_refresh_token(c: Cli) -> None:
    c.add_profile()
    for _ in range(2):
        _, run, _ = sign_in(c, Person(c.e, after=1))
        run()
    done = [x for x in c.e.ledger() if x["endpoint"] == "device_token" and x["status"] == 200]
    assert len(done) == 2 and done[0]["refresh_fp"] == done[1]["refresh_fp"]
    assert [d["reused"] for d in done] == [False, True]


def test_fewer_scopes_fail_loudly_and_keep_the_tokens(c: Cli) -> None:
    c.add_profile()
    _, run, _ = sign_in(c, Person(c.e, after=1))
    result = run()
    require_granted("rec", result)  # everything granted: no error
    fewer = replace(
        result,
        granted_scopes=("spark:kms",),
        missing_scopes=tuple(s for s in result.requested_scopes if s != "spark:kms"),
    )
    with pytest.raises(OAuthError) as info:
        require_granted("rec", fewer)
    assert info.value.exit_code == 1 and "spark:people_read" in info.value.message
    assert "login --device -p rec" in (info.value.fix or "")


# --- the emulator's device rules -----------------------------------------------------------


@pytest.fixture
def e(c: Cli) -> InProc:
    return c.e


def authorize(http: httpx2.Client, e: InProc, scope: str = "spark:kms") -> dict[str, Any]:
    r = http.post("/v1/device/authorize", data={"client_id": e.client_id, "scope": scope})
    assert r.status_code == 200, r.text
    return dict(r.json())


def poll(http: httpx2.Client, e: InProc, dev: dict[str, Any]) -> httpx2.Response:
    form = {"grant_type": DEVICE_GRANT_TYPE, "device_code": dev["device_code"]}
    return http.post("/v1/device/token", data=form, auth=(e.client_id, e.client_secret))


def test_emulator_pending_is_428_with_webex_envelope(e: InProc) -> None:
    http = e.client()
    dev = authorize(http, e)
    assert dev["interval"] == 2 and dev["expires_in"] == 300 and len(dev["user_code"]) == 6
    r = poll(http, e, dev)
    assert r.status_code == 428
    body = r.json()
    assert set(body) == {"message", "errors", "trackingId"}
    assert "authorization_pending" in body["errors"][0]["description"]


def test_emulator_slow_down_raises_the_interval_by_five(e: InProc) -> None:
    http = e.client()
    dev = authorize(http, e)
    assert poll(http, e, dev).status_code == 428
    e.advance(1)
    slow = poll(http, e, dev)
    assert slow.status_code == 400 and "slow_down" in slow.text
    e.advance(2.5)  # the old interval is no longer enough
    assert "slow_down" in poll(http, e, dev).text
    e.advance(12)  # 2 + 5 + 5
    assert poll(http, e, dev).status_code == 428
    intervals = [x.get("interval") for x in e.ledger() if x.get("error") == "slow_down"]
    assert intervals == [7, 12]


def test_emulator_device_code_expires(e: InProc) -> None:
    http = e.client()
    e.policy(device_ttl=30)
    dev = authorize(http, e)
    e.advance(31)
    r = poll(http, e, dev)
    assert r.status_code == 400 and "invalid_grant" in r.text
    approve = e.control("POST", "device", {"user_code": dev["user_code"]})
    assert approve["status"] == 400


def test_emulator_verify_page_approves_and_denies(e: InProc) -> None:
    http = e.client()
    dev = authorize(http, e)
    page = http.get(dev["verification_uri_complete"].replace(e.base_url, ""))
    assert page.status_code == 200 and dev["user_code"] in page.text
    r = http.post("/v1/device/verify", data={"userCode": dev["user_code"], "decision": "deny"})
    assert r.status_code == 200
    assert "access_denied" in poll(http, e, dev).text
    dev2 = authorize(http, e)
    http.post("/v1/device/verify", data={"userCode": dev2["user_code"], "decision": "approve"})
    done = poll(http, e, dev2)
    assert done.status_code == 200 and done.json()["refresh_token"]


def test_emulator_refuses_oidc_scopes(e: InProc) -> None:
    http = e.client()
    e.emu.integrations[e.client_id].scopes.append("openid")
    r = http.post("/v1/device/authorize", data={"client_id": e.client_id, "scope": "openid"})
    assert r.status_code == 400 and "invalid_scope" in r.text


def test_emulator_without_helper_uris_fails_on_webex_page_and_stays_pending(e: InProc) -> None:
    http = e.client()
    integ = e.emu.integrations[e.client_id]
    integ.redirect_uris = [u for u in integ.redirect_uris if u not in DEVICE_HELPER_REDIRECT_URIS]
    dev = authorize(http, e)
    page = http.get("/v1/device/verify", params={"userCode": dev["user_code"]})
    assert page.status_code == 400 and "encountered an error" in page.text
    assert e.control("POST", "device", {"user_code": dev["user_code"]})["status"] == 400
    assert poll(http, e, dev).status_code == 428


def test_fault_can_name_an_oauth_code(e: InProc) -> None:
    http = e.client()
    dev = authorize(http, e)
    e.fault("status", "device_token", status=400, error="slow_down")
    r = poll(http, e, dev)
    assert r.status_code == 400 and "slow_down" in r.json()["errors"][0]["description"]


# --- reading Webex's answers and what the person is shown ----------------------------------


def info(status: int, code: str | None, message: str = "x") -> ErrorInfo:
    return ErrorInfo(status=status, code=code, message=message, tracking_id=None)


@pytest.mark.parametrize(
    ("status", "code", "kind", "error"),
    [
        (428, None, OAuthError, PENDING),
        (400, "authorization_pending", OAuthError, PENDING),
        (400, "slow_down", OAuthError, SLOW_DOWN),
        (400, "access_denied", ConsentDenied, "access_denied"),
        (400, "invalid_grant", InvalidGrant, "invalid_grant"),
        (400, "expired_token", InvalidGrant, "expired_token"),
        (429, None, WebexUnavailable, None),
        (503, None, WebexUnavailable, None),
    ],
)
def test_device_answers_are_classified_by_code(
    status: int, code: str | None, kind: type[Exception], error: str | None
) -> None:
    exc = classify_error(info(status, code), grant=DEVICE_GRANT_TYPE)
    assert type(exc) is kind and exc.error == error


def test_a_redirect_complaint_names_the_four_helper_uris() -> None:
    exc = classify_error(
        info(400, "invalid_request", "Invalid redirect_uri"), grant=DEVICE_GRANT_TYPE
    )
    assert isinstance(exc, RedirectUriRejected)
    assert all(uri in (exc.fix or "") for uri in DEVICE_HELPER_REDIRECT_URIS)
    assert len(DEVICE_HELPER_REDIRECT_URIS) == 4


def test_verification_address_must_be_webex() -> None:
    base = "https://webexapis.com"
    good = "https://oauth-helper-r.wbx2.com/verify"
    assert verification_address(good, base) == good
    assert verification_address("https://login-k.webex.com/verify", base)
    for bad in (
        "https://evil.example/verify",
        "http://oauth-helper-r.wbx2.com/verify",
        "https://wbx2.com.evil.example/verify",
        "https://oauth-helper-r.wbx2.com/verify\x1b[2J",
    ):
        with pytest.raises(MalformedResponse):
            verification_address(bad, base)
    assert verification_address("http://127.0.0.1:5/v1/device/verify", "http://127.0.0.1:5")


def test_device_authorization_answer_is_checked() -> None:
    ok = {
        "device_code": "d",
        "user_code": "123456",
        "verification_uri": "https://oauth-helper-r.wbx2.com/verify",
        "expires_in": 300,
        "interval": 2,
    }
    assert DeviceAuthorization.parse(ok).interval == 2
    assert DeviceAuthorization.parse({k: v for k, v in ok.items() if k != "interval"}).interval
    for broken in ({"expires_in": "300"}, {"expires_in": True}, {"user_code": 7}):
        with pytest.raises(ValueError):
            DeviceAuthorization.parse(dict(ok, **broken))


def test_oidc_refusal_with_only_oidc_scopes_points_at_the_browser(c: Cli) -> None:
    from wxtoken.login.device import refuse_oidc_scopes

    with pytest.raises(UsageError) as err:
        refuse_oidc_scopes("rec", ("openid", "profile"))
    assert err.value.fix == "sign in with the browser instead: wxtoken login -p rec"


# --- headless detection ----------------------------------------------------------------------


def test_display_missing_on_linux_only() -> None:
    assert browser.display_missing({}, "linux")
    assert not browser.display_missing({"DISPLAY": ":0"}, "linux")
    assert not browser.display_missing({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not browser.display_missing({}, "darwin")


def test_a_failing_browser_command_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    said: list[str] = []
    done = threading.Event()

    def failed(why: str) -> None:
        said.append(why)
        done.set()

    monkeypatch.setenv("BROWSER", "false")
    browser.open_browser("http://127.0.0.1:9/", failed)
    assert done.wait(10) and "exited with status 1" in said[0]
    monkeypatch.setenv("BROWSER", "/nonexistent/browser-xyz")
    browser.open_browser("http://127.0.0.1:9/", failed)
    assert "could be started" in said[1]
