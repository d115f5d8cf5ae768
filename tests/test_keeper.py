"""The keeper against the emulator: long horizons on a virtual clock shared with the emulator,
and the real `wxtoken keep` process for signals, metrics, the token socket and permissions.

Alerts are checked where they land: a local webhook receiver, the emulator's recorded Webex
messages, and a local SMTP server that requires STARTTLS.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WXTOKEN, Emulator, Wx, free_port, self_signed_cert, store_at, wait_until
from wxtoken.client import RetryPolicy, WebexClient
from wxtoken.keeper.config import EXAMPLE, parse_config
from wxtoken.keeper.run import Keeper

# --- receivers ---------------------------------------------------------------------------------


@dataclass
class Webhook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    """A webhook endpoint on 127.0.0.1 that records what it receives (or fails on request)."""
    hook = Webhook(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hook.fail_next > 0:
                hook.fail_next -= 1
                self.send_response(500)
            else:
                hook.received.append(json.loads(body))
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook/SECRETPATH"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_receiver() as hook:
        yield hook


@dataclass
class Smtp:
    port: int
    ca_file: str
    messages: list[str]


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Smtp]:
    from aiosmtpd.controller import Controller

    cert_file, key_file = self_signed_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    messages: list[str] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    port = free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True
    )
    controller.start()
    yield Smtp(port, str(cert_file), messages)
    controller.stop()


# --- virtual time ------------------------------------------------------------------------------


class VClock:
    """The keeper's clock and the emulator's, moved together."""

    def __init__(self, emu: Emulator):
        self.emu = emu
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.emu.advance(seconds)


def every_channel(emu: Emulator, webhook: Webhook, smtp: Smtp) -> dict[str, Any]:
    """Alerts to a webhook, a Webex room (the emulator's messages) and email, all local."""
    return {
        "webhook": [{"url": webhook.url}],
        "webex": [
            {"room_id": "ROOM-ALERTS", "token_env": "WXTOKEN_TEST_BOT", "base_url": emu.base_url}
        ],
        "email": [
            {
                "host": "127.0.0.1",
                "port": smtp.port,
                "sender": "wxtoken@example.com",
                "to": ["oncall@example.com"],
                "ca_file": smtp.ca_file,
            }
        ],
    }


def keeper_for(
    wx: Wx, emu: Emulator, clock: VClock, alerts: dict[str, Any], **schedule: Any
) -> tuple[Keeper, io.StringIO]:
    config = parse_config(
        {
            "schedule": dict(
                {
                    "check_interval": 1,
                    "jitter": 0,
                    "retry_base": 2,
                    "retry_cap": 8,
                    "min_interval": 0,
                },
                **schedule,
            ),
            "alerts": dict({"thresholds": ["40s", "20s", "10s"]}, **alerts),
        }
    )
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env, clock=clock)
    client = WebexClient(
        emu.base_url, clock=clock, sleep=lambda s: None, retry=RetryPolicy(attempts=2, budget=5)
    )
    log = io.StringIO()
    return Keeper(store, config, clock=clock, log=log, client_for=lambda p: client), log


def run_for(keeper: Keeper, clock: VClock, seconds: float, step: float = 1.0) -> None:
    t = 0.0
    while t < seconds:
        keeper.tick()
        keeper.drain()
        clock.advance(step)
        t += step
    keeper.alerts.flush()


def kinds(items: list[dict[str, Any]]) -> list[str]:
    return [str(i["kind"]) for i in items]


@pytest.fixture
def short(emulator_factory: Any) -> Any:
    def make(*extra: str) -> Emulator:
        return emulator_factory("--access-ttl", "20", "--refresh-ttl", "60", *extra)

    return make


# --- long horizons on the virtual clock --------------------------------------------------------


def test_keeps_grant_alive_across_10_refresh_lifetimes(wx: Wx, short: Any, figure: Any) -> None:
    emu = short()
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    clock = VClock(emu)
    keeper, _ = keeper_for(wx, emu, clock, {})
    keeper.alerts.start()
    run_for(keeper, clock, 650)
    record = keeper.store.token_record("rec")
    assert record is not None and record.status == "ok"
    assert record.refresh_expires_at is not None and record.refresh_expires_at > clock()
    refreshes = [e for e in emu.refreshes() if e["status"] == 200]
    figure(
        f"keeper, access 20 s / refresh 60 s sliding, 650 virtual s (10.8 refresh "
        f"lifetimes): refreshes = {len(refreshes)}, failed = "
        f"{len([e for e in emu.refreshes() if e['status'] != 200])}, alerts = "
        f"{keeper.alerts.delivered}"
    )
    assert len(refreshes) >= 40 and keeper.alerts.delivered == 0
    # The grant still works at 'Webex' after all that.
    keeper.alerts.stop()
    wx("refresh", "--force", env={"WXTOKEN_HOME": wx.env["WXTOKEN_HOME"]}, check=0)


def test_each_threshold_fires_once_on_every_channel(
    wx: Wx, short: Any, webhook: Webhook, smtp: Smtp, figure: Any
) -> None:
    emu = short("--refresh-expiry", "fixed")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    os.environ["WXTOKEN_TEST_BOT"] = emu.info["bot_token"]
    alerts = every_channel(emu, webhook, smtp)
    clock = VClock(emu)
    keeper, log = keeper_for(wx, emu, clock, alerts)
    keeper.alerts.start()
    run_for(keeper, clock, 25)  # crosses 40 s left
    keeper.alerts.stop()
    keeper.close()
    # A restarted keeper must not repeat what the first one sent.
    keeper, log2 = keeper_for(wx, emu, clock, alerts)
    keeper.alerts.start()
    run_for(keeper, clock, 60)
    keeper.alerts.stop()
    mark = emu.mark()
    run_for(keeper, clock, 20)
    assert [e for e in emu.ledger(mark) if e["endpoint"] == "access_token"] == []
    expected = ["expiry", "expiry", "expiry", "login_required"]
    assert kinds(webhook.received) == expected, [h["key"] for h in webhook.received]
    assert [h["key"].rsplit(":", 1)[1] for h in webhook.received[:3]] == ["40", "20", "10"]
    messages = emu.control("GET", "messages")["items"]
    assert [m["roomId"] for m in messages] == ["ROOM-ALERTS"] * 4
    assert (
        len(smtp.messages) == 4
        and "Subject: wxtoken: login required for rec" in (smtp.messages[-1])
    )
    for h in webhook.received:
        assert h["profile"] == "rec" and h["org_id"] == emu.info["org_id"]
        assert "wxtoken login -p rec" in h["text"]
    figure(
        f"alert thresholds 40s/20s/10s + expiry over a keeper restart: webhook "
        f"{len(webhook.received)}, webex {len(messages)}, email {len(smtp.messages)} "
        "(expected 4 each)"
    )
    text = (
        json.dumps(webhook.received)
        + log.getvalue()
        + log2.getvalue()
        + "".join(smtp.messages)
        + json.dumps(messages)
    )
    assert "SECRETPATH" not in log.getvalue() + log2.getvalue()
    rt = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env).load_token("rec")
    assert rt is not None and rt[1].refresh_token is not None
    assert rt[1].refresh_token.split("_")[0] not in text
    assert emu.client_secret not in text


def test_invalid_grant_alerts_once_and_does_not_loop(wx: Wx, short: Any, webhook: Webhook) -> None:
    emu = short()
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    rt = wx("export", check=0).stdout.strip()
    emu.control("POST", "revoke", {"token": rt})
    mark = emu.mark()
    clock = VClock(emu)
    keeper, _ = keeper_for(wx, emu, clock, {"webhook": [{"url": webhook.url}]})
    keeper.alerts.start()
    run_for(keeper, clock, 80)
    keeper.alerts.stop()
    assert kinds(webhook.received) == ["login_required"]
    attempts = emu.refreshes(mark)
    assert len(attempts) == 1 and attempts[0]["status"] == 400
    record = keeper.store.token_record("rec")
    assert record is not None and record.status == "login_required", "kept, not deleted"


def test_rotation_is_stored_then_alerted(wx: Wx, short: Any, webhook: Webhook) -> None:
    emu = short("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    wx("export", "--format", "json", check=0)
    clock = VClock(emu)
    keeper, _ = keeper_for(wx, emu, clock, {"webhook": [{"url": webhook.url}]})
    keeper.alerts.start()
    run_for(keeper, clock, 17)
    keeper.alerts.stop()
    rotations = [h for h in webhook.received if h["kind"] == "rotation"]
    assert len(rotations) == 1 and "as json is now stale" in rotations[0]["text"]
    # The stored refresh token is the new one: the CLI can refresh with it.
    wx("refresh", "--force", check=0)


def test_failures_alert_then_recovery(wx: Wx, emulator_factory: Any, webhook: Webhook) -> None:
    emu = emulator_factory("--access-ttl", "20")  # a 90-day refresh token: no expiry alerts
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    emu.fault("status", status=503, count=1000)
    clock = VClock(emu)
    keeper, _ = keeper_for(wx, emu, clock, {"webhook": [{"url": webhook.url}]})
    keeper.alerts.start()
    run_for(keeper, clock, 40)
    assert kinds(webhook.received) == ["failures"]
    assert "503" in webhook.received[0]["text"]
    emu.control("DELETE", "faults")
    run_for(keeper, clock, 12)
    keeper.alerts.stop()
    assert kinds(webhook.received) == ["failures", "recovery"]
    metrics = keeper.metrics().decode()
    assert 'wxtoken_refresh_failures_total{profile="rec",reason="unavailable"}' in metrics


def test_alert_channel_failure_does_not_stop_refreshing(
    wx: Wx, short: Any, webhook: Webhook
) -> None:
    emu = short("--rotate", "always")
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    webhook.fail_next = 1
    clock = VClock(emu)
    keeper, log = keeper_for(wx, emu, clock, {"webhook": [{"url": webhook.url}]})
    keeper.alerts.start()
    run_for(keeper, clock, 17)  # one refresh → rotation alert → webhook answers 500
    assert webhook.received == [] and "will retry" in log.getvalue()
    run_for(keeper, clock, 62)  # refreshing goes on; the alert is retried after 60 s
    assert wait_until(lambda: len([h for h in webhook.received if h["kind"] == "rotation"]) >= 1)
    keeper.alerts.stop()
    assert len([e for e in emu.refreshes() if e["status"] == 200]) >= 5


# --- config ------------------------------------------------------------------------------------


def test_print_config_is_the_parser_default(wx: Wx) -> None:
    out = wx("keep", "--print-config", check=0).stdout
    assert out == EXAMPLE
    assert parse_config(tomllib.loads(out)) == parse_config({})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[schedule]\nrefresh_fraction = 2\n", "refresh_fraction"),
        ("[schedule]\ncheck_interval = 'soon'\n", "check_interval"),
        ("[alerts]\nthresholds = 'x'\n", "thresholds"),
        ("[[alerts.webhook]]\nurl = 'http://example.com/x'\n", "https"),
        ("[[alerts.webex]]\ntoken_env = 'X'\n", "room_id"),
        ("[metrics]\nlisten = 'nowhere'\n", "HOST:PORT"),
        ("[bogus]\n", "unknown"),
        ("not toml = = \n", "TOML"),
    ],
)
def test_bad_config_is_one_clear_line(wx: Wx, tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "keeper.toml"
    cfg.write_text(text)
    proc = wx("keep", "--config", str(cfg))
    assert proc.returncode == 2 and needle in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# --- the real process --------------------------------------------------------------------------


@dataclass
class KeeperProcess:
    """A running `wxtoken keep`; its stderr goes to a file, so a chatty keeper never blocks."""

    proc: subprocess.Popen[str]
    url: str  # http://HOST:PORT of /metrics and /healthz
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_keep(
    wx: Wx, *args: str, env: dict[str, str] | None = None, listen: str | None = "127.0.0.1:0"
) -> KeeperProcess:
    """`wxtoken keep`, started and listening; metrics on a free port unless `listen` is None
    (then the config file decides)."""
    metrics = ["--metrics-listen", listen] if listen else []
    log_path = wx.home / f"keeper-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [WXTOKEN, "keep", *metrics, *args],
            env=dict(wx.env, **(env or {})),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    keeper = KeeperProcess(proc, "", log_path)
    marker = "metrics and health on "
    started = wait_until(lambda: marker in keeper.log() or proc.poll() is not None, timeout=30)
    if not started or marker not in keeper.log():
        keeper.kill()
        raise AssertionError(f"keeper did not start: {keeper.log()}")
    line = next(x for x in keeper.log().splitlines() if marker in x)
    keeper.url = line.split(marker, 1)[1].strip().removesuffix("/metrics")
    return keeper


def test_keep_process_metrics_socket_and_sigterm(wx: Wx, emu: Emulator, tmp_path: Path) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    cfg = tmp_path / "k.toml"
    cfg.write_text(
        '[schedule]\ncheck_interval = "0.2s"\nmax_age = "3s"\nmin_interval = 0\njitter = 0\n'
    )
    keeper = start_keep(wx, "--config", str(cfg))
    url = keeper.url
    try:
        assert wait_until(lambda: urllib.request.urlopen(f"{url}/healthz").status == 200)
        metrics = urllib.request.urlopen(f"{url}/metrics").read().decode()
        assert 'wxtoken_refresh_token_expiry_seconds{profile="rec"}' in metrics
        assert 'wxtoken_profile_state{profile="rec",state="ok"} 1.0' in metrics
        home = Path(wx.env["WXTOKEN_HOME"])
        sock = home / "keeper.sock"
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        assert oct(home.stat().st_mode & 0o777) == "0o700"
        # Scripts need no store key while the keeper runs.
        no_key = {"WXTOKEN_KEY_FILE": ""}
        token = wx("token", env=no_key, check=0).stdout.strip()
        assert token and token == wx("token", check=0).stdout.strip()
        assert "keeper: running" in wx("status", check=0).stdout
        # A scheduled refresh is in flight when SIGTERM arrives: it finishes and is stored.
        before = store_at(home, wx.env).token_record("rec")
        emu.fault("delay", delay=2.0, count=1)
        assert wait_until(lambda: emu.control("GET", "faults")["faults"] == [], timeout=10)
        code = keeper.stop()
    finally:
        keeper.kill()
    err = keeper.log()
    assert code == 0, err
    assert "stopped cleanly" in err
    # `status` asked the running keeper whether it is alive: that leaves nothing in its log.
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    after = store_at(home, wx.env).token_record("rec")
    assert before is not None and after is not None and after.generation > before.generation
    assert not sock.exists()
    wx("refresh", "--force", check=0)  # nothing lost: the stored grant works


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_use_the_socket(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    keeper = start_keep(wx)
    sock = str(Path(wx.env["WXTOKEN_HOME"]) / "keeper.sock")
    try:
        assert wait_until(lambda: Path(sock).exists())
        # A forked child that becomes uid/gid 65534 (nobody) and tries to ask for a token.
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(5)
                s.connect(sock)
                s.sendall(b'{"profile": "rec"}\n')
                msg = b"served:" + s.recv(200)
            except OSError as exc:
                msg = f"denied {exc.errno}".encode()
            os.write(w, msg)
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        answer = os.read(r, 300).decode()
        os.close(r)
        assert answer.startswith("denied"), answer
    finally:
        assert keeper.stop() == 0


def test_keep_needs_the_key_at_start(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    proc = wx("keep", "--metrics-listen", "127.0.0.1:0", env={"WXTOKEN_KEY_FILE": ""}, timeout=30)
    assert proc.returncode == 6 and "WXTOKEN_KEY_FILE" in proc.stderr


def test_socket_answers_errors_with_exit_codes(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu)
    keeper = start_keep(wx, "--all")
    try:
        sock = Path(wx.env["WXTOKEN_HOME"]) / "keeper.sock"
        assert wait_until(sock.exists)
        got = wx("token", env={"WXTOKEN_KEY_FILE": ""})
        assert got.returncode == 4 and "wxtoken login" in got.stderr
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(b"not json\n")
            assert json.loads(s.recv(1000))["exit_code"] == 2
    finally:
        keeper.stop()


def test_clock_jumps(wx: Wx, emu: Emulator, webhook: Webhook) -> None:
    """A forward jump (suspend for 15 days) is noticed on the next wake and fixed
    with one refresh; a backward jump causes no refresh storm."""
    wx.add_profile(emu)
    assert wx.login().returncode == 0
    clock = VClock(emu)
    keeper, _ = keeper_for(
        wx, emu, clock, {"webhook": [{"url": webhook.url}]}, min_interval="10m", jitter="5m"
    )
    keeper.alerts.start()
    mark = emu.mark()
    run_for(keeper, clock, 5)
    assert emu.refreshes(mark) == []
    clock.advance(15 * 86400)  # the access token (14 days) expired while "suspended"
    run_for(keeper, clock, 3)
    assert len(emu.refreshes(mark)) == 1
    clock.advance(-86400)
    run_for(keeper, clock, 60, step=5)
    keeper.alerts.stop()
    assert len(emu.refreshes(mark)) == 1
    assert webhook.received == []
