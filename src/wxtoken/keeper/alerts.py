"""Alert delivery: webhook, Webex message, email; deduplicated through the store's event log.

Delivery runs on its own thread, so a hanging webhook never delays a refresh. Each
(alert key, channel) pair is delivered once ever: success is recorded as an `alert_sent`
event, which a restarted keeper reads back. A failed channel is retried on later passes.
Alerts carry no secret: texts are built from metadata, and channel URLs are shown without
their paths (a webhook's path is its credential).
"""

from __future__ import annotations

import os
import queue
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import IO, Any

from .._local import Settings
from ..errors import ProfileNotFound
from ..network import Network
from ..store import TokenStore
from .config import EmailChannel, KeeperConfig, WebexChannel, WebhookChannel
from .schedule import Alert

Channel = WebhookChannel | WebexChannel | EmailChannel
RETRY_AFTER_FAILURE = 60.0
CHANNEL_TIMEOUT = 10.0
CHANNEL_DEADLINE = 20.0  # a whole webhook exchange, a proxy's CONNECT included


class AlertError(Exception):
    pass


def _post_json(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    network: Network | None = None,
) -> None:
    import httpx2

    from ..errors import WxtokenError
    from ..transport.errors import CertificateRejected, ProxyFailure

    # The same proxy rule and trust as the profile's token requests (network.py).
    net = network if network is not None else Network.of(Settings())
    try:
        transport = net.transport(
            connect_timeout=CHANNEL_TIMEOUT, read_timeout=CHANNEL_TIMEOUT, deadline=CHANNEL_DEADLINE
        )
        with httpx2.Client(transport=transport, follow_redirects=False) as http:
            resp = http.post(url, json=body, headers=headers)
    except WxtokenError as exc:  # an unusable proxy or CA setting
        raise AlertError(exc.message) from None
    except (ProxyFailure, CertificateRejected) as exc:  # our words: a proxy, never its password
        raise AlertError(str(exc)) from None
    except httpx2.HTTPError as exc:
        raise AlertError(type(exc).__name__) from None
    if resp.status_code >= 300:
        raise AlertError(f"HTTP {resp.status_code}")


def deliver(channel: Channel, alert: Alert, network: Network | None = None) -> None:
    text = alert.text + (f"\nFix: {alert.fix}" if alert.fix else "")
    if isinstance(channel, WebhookChannel):
        # "text" is what Slack, Teams workflows and Webex incoming webhooks all read.
        _post_json(channel.url, dict(alert.as_json(), text=text, markdown=text), None, network)
    elif isinstance(channel, WebexChannel):
        token = os.environ.get(channel.token_env, "")
        if not token:
            raise AlertError(f"${channel.token_env} (the bot token) is not set")
        body: dict[str, Any] = {"markdown": text}
        if channel.room_id:
            body["roomId"] = channel.room_id
        else:
            body["toPersonEmail"] = channel.to_person_email
        _post_json(
            f"{channel.base_url.rstrip('/')}/v1/messages",
            body,
            {"Authorization": f"Bearer {token}"},
            network,
        )
    else:
        msg = EmailMessage()
        msg["Subject"] = f"wxtoken: {alert.kind.replace('_', ' ')} for {alert.profile}"
        msg["From"] = channel.sender
        msg["To"] = ", ".join(channel.to)
        msg.set_content(text + "\n")
        from ..errors import WxtokenError

        try:
            context = _smtp_context(channel, network) if channel.starttls else None
        except WxtokenError as exc:  # an unusable CA file
            raise AlertError(exc.message) from None
        try:
            with smtplib.SMTP(channel.host, channel.port, timeout=CHANNEL_TIMEOUT) as smtp:
                if context is not None:
                    smtp.starttls(context=context)
                if channel.username:
                    password = os.environ.get(channel.password_env or "", "")
                    smtp.login(channel.username, password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise AlertError(type(exc).__name__) from None


def _smtp_context(channel: EmailChannel, network: Network | None) -> ssl.SSLContext:
    """The trust of the token requests (the OS store, SSL_CERT_FILE / SSL_CERT_DIR), plus the
    channel's own ca_file; SMTP takes no HTTP proxy."""
    from dataclasses import replace

    net = network if network is not None else Network.of(Settings())
    return replace(net, anchors=replace(net.anchors, ca_file=channel.ca_file)).ssl_context()


class Dispatcher:
    """Queues alerts and delivers each to every channel once, on a background thread."""

    def __init__(
        self,
        store: TokenStore,
        config: KeeperConfig,
        *,
        clock: Callable[[], float] = time.time,
        log: IO[str] = sys.stderr,
        send: Callable[[Channel, Alert], None] | None = None,
        settings: Settings | None = None,
    ):
        self.store = store
        self.config = config
        self._clock = clock
        self._log = log
        self._send = send or self._deliver
        self._settings = settings if settings is not None else Settings()
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._retry: list[tuple[float, Alert]] = []
        self._lock = threading.Lock()
        self.sent: set[tuple[str, str]] = set()
        self.keys_sent: set[str] = set()
        self.reload()
        self.delivered = 0
        self.failed = 0
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="wxtoken-alerts", daemon=True)

    def reload(self) -> None:
        """Read back what was delivered, by this keeper before a restart or by another keeper
        sharing the store, from the event log: each (alert, channel) is delivered once."""
        sent = {
            (str(e.detail.get("key")), str(e.detail.get("channel")))
            for e in self.store.events(kinds=("alert_sent",), limit=10_000_000)
        }
        with self._lock:
            self.sent |= sent
            self.keys_sent |= {k for k, _ in sent}

    def start(self) -> None:
        self._thread.start()

    def _deliver(self, channel: Channel, alert: Alert) -> None:
        """Deliver the way the alert's profile reaches Webex: its proxy and CA file if it has
        them, else the environment's."""
        try:
            profile = self.store.get_profile(alert.profile)
        except ProfileNotFound:
            profile = None
        deliver(channel, alert, Network.of(self._settings, profile))

    def submit(self, alert: Alert) -> None:
        with self._lock:
            self.keys_sent.add(alert.key)  # queued counts as handled for deduplication
        self._log.write(f"{alert.text}" + (f" Fix: {alert.fix}" if alert.fix else "") + "\n")
        self._log.flush()
        with self._lock:
            self._pending += 1
        self._queue.put(alert)

    def settle(self, keys: list[str], alert: Alert) -> None:
        """Mark extra keys (thresholds crossed together) as handled alongside `alert`."""
        with self._lock:
            self.keys_sent.update(keys)
        for key in keys:
            if key != alert.key:
                self.store.append_event(
                    alert.profile,
                    "alert_sent",
                    {"key": key, "channel": "settled", "kind": alert.kind},
                )

    def _channels(self) -> list[tuple[str, Channel | None]]:
        if not self.config.channels:
            return [("log", None)]
        return [(c.describe(), c) for c in self.config.channels]

    def _attempt(self, alert: Alert) -> bool:
        ok = True
        for name, channel in self._channels():
            if (alert.key, name) in self.sent:
                continue
            try:
                if channel is not None:
                    self._send(channel, alert)
            except Exception as exc:  # a channel's failure must never stop the keeper
                ok = False
                self.failed += 1
                # Only our own messages are safe to show: another exception's text could carry
                # the channel's URL, whose path is a webhook's credential.
                why = str(exc) if isinstance(exc, AlertError) else type(exc).__name__
                self._log.write(f"wxtoken keep: alert via {name} failed ({why}); will retry\n")
                self.store.append_event(
                    alert.profile,
                    "alert_failed",
                    {"key": alert.key, "channel": name, "error": why},
                )
                continue
            self.sent.add((alert.key, name))
            self.delivered += 1
            self.store.append_event(
                alert.profile, "alert_sent", {"key": alert.key, "channel": name, "kind": alert.kind}
            )
        return ok

    def _run(self) -> None:
        while True:
            try:
                alert = self._queue.get(timeout=1.0)
            except queue.Empty:
                alert = None
            else:
                if alert is None:
                    return
                try:
                    if not self._attempt(alert):
                        self._retry.append((self._clock() + RETRY_AFTER_FAILURE, alert))
                finally:
                    with self._lock:
                        self._pending -= 1
            now = self._clock()
            due = [a for t, a in self._retry if t <= now]
            self._retry = [(t, a) for t, a in self._retry if t > now]
            for a in due:
                if not self._attempt(a):
                    self._retry.append((now + RETRY_AFTER_FAILURE, a))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until queued alerts had their first delivery attempt (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self, timeout: float = 15.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
