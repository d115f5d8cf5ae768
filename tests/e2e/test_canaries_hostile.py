"""A hostile token endpoint tries to get secrets echoed: none may appear anywhere wxtoken writes.

The grant is real (signed in at the emulator); then the profile is pointed at a server on
127.0.0.1 that answers refreshes with every trick that used to leak: unparseable 200 bodies that
carry a new access token, error descriptions, trackingIds and redirect targets that echo the
refresh token and client secret it was sent, escape sequences in tokens. Every output, log line,
alert payload, stored column and event is scanned for any 12-character piece of any secret.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tests.conftest import WXTOKEN, Emulator, Wx, assert_no_secret, wait_until
from tests.hostile_servers import Reply, Request, app, serving

HOSTILE_AT = "HostileAccessTokenCanary" + "Q" * 40  # a "new" access token only the server knows


def hostile(mode: list[str]) -> Any:
    def respond(req: Request, peer: Any) -> Reply:
        form = dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace")))
        rt = form.get("refresh_token", "")
        cs = form.get("client_secret", "")
        tokens = f'"access_token":"{HOSTILE_AT}","refresh_token":"{rt}","token_type":"Bearer"'
        json_ct = [("Content-Type", "application/json")]
        kind = mode[0]
        if kind == "nan":
            return Reply(body=("{" + tokens + ',"expires_in":NaN}').encode(), headers=json_ct)
        if kind == "trailing":
            return Reply(body=("{" + tokens + ',"expires_in":60} and more').encode())
        if kind == "truncated":
            return Reply(body=("{" + tokens + ',"expires_in":6').encode(), headers=json_ct)
        if kind == "bad-utf8":
            return Reply(body=("{" + tokens).encode() + b"\xff}", headers=json_ct)
        if kind == "escape-token":
            body = {"access_token": "\x1b]52;c;" + HOSTILE_AT + "\x07", "expires_in": 60}
            return Reply(body=json.dumps(body).encode(), headers=json_ct)
        if kind in ("echo400", "echo503"):
            status = 400 if kind == "echo400" else 503
            body = {
                "error": "invalid_request",
                "error_description": f"refresh_token {rt} is odd; client_secret={cs}",
                "message": f"echo {rt}",
                "trackingId": f"ROUTER_{rt[:30]}",
            }
            return Reply(
                status=status,
                body=json.dumps(body).encode(),
                headers=[*json_ct, ("TrackingID", f"T_{cs[:40]}")],
            )
        # A redirect carrying what it was sent: never followed, and never shown whole.
        return Reply(status=302, headers=[("Location", f"http://127.0.0.1:9/?rt={rt}&cs={cs}")])

    return app(respond)


class Webhook:
    def __init__(self) -> None:
        import http.server

        self.received: list[str] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", 0))
                hook.received.append(self.rfile.read(n).decode("utf-8", "replace"))
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def store_text(home: Path) -> str:
    """Every stored value that is not sealed: what a backup, a DBA or `sqlite3` would see."""
    parts = []
    with sqlite3.connect(home / "wxtoken.db") as db:
        for table, skip in (
            ("meta", set()),
            ("profiles", {"client_secret"}),
            ("tokens", {"access_token", "refresh_token"}),
            ("events", set()),
        ):
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] not in skip]
            for row in db.execute(f"SELECT {', '.join(cols)} FROM {table}"):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def test_no_secret_reaches_any_output_under_a_hostile_token_endpoint(
    logged_in: tuple[Wx, Emulator], tmp_path: Path
) -> None:
    wx, emu = logged_in
    handed = json.loads(wx("export", "--format", "json", check=0).stdout)
    access = wx("token", check=0).stdout.strip()
    secrets = [handed["refresh_token"], handed["client_secret"], access, HOSTILE_AT]
    printed_on_purpose = len(wx.outputs)  # export and token print secrets: that is their job
    outputs: list[str] = []
    mode = ["nan"]
    with serving(hostile(mode)) as server:
        wx("profile", "set", "rec", "--base-url", server.url, check=0)
        for kind in ("nan", "trailing", "truncated", "bad-utf8", "escape-token", "echo503",
                     "echo400", "redirect"):  # fmt: skip
            mode[0] = kind
            proc = wx("refresh", "--force")
            assert proc.returncode in (1, 5), (kind, proc.returncode, proc.stderr)
            assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
            outputs += [proc.stdout, proc.stderr]
        for args in (["status"], ["status", "--json"], ["profile", "show", "rec", "--json"]):
            proc = wx(*args)
            outputs += [proc.stdout, proc.stderr]
        # The keeper meets the same server: its log and its alerts must stay clean too.
        hook = Webhook()
        config = tmp_path / "keeper.toml"
        config.write_text(
            '[schedule]\ncheck_interval = "0.3s"\nmax_age = "1s"\nmin_interval = 0\njitter = 0\n'
            'retry_base = "0.2s"\nretry_cap = "0.5s"\n'
            f'[alerts]\nfailures = 1\n[[alerts.webhook]]\nurl = "{hook.url}"\n'
        )
        mode[0] = "echo503"
        keeper = subprocess.Popen(
            [WXTOKEN, "keep", "--config", str(config), "--metrics-listen", "127.0.0.1:0"],
            env=wx.env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until(lambda: len(hook.received) >= 1, timeout=60)
            for kind in ("nan", "echo400", "redirect"):
                mode[0] = kind
                time.sleep(1.5)
        finally:
            keeper.terminate()
            _, keeper_log = keeper.communicate(timeout=60)
        hook.server.shutdown()
    outputs += [keeper_log, *hook.received, store_text(Path(wx.env["WXTOKEN_HOME"]))]
    outputs += wx.outputs[printed_on_purpose:]
    assert "Traceback" not in keeper_log
    assert_no_secret(outputs, secrets)
    # Nothing was half-written: the real grant still works against the real Webex.
    wx("profile", "set", "rec", "--base-url", emu.base_url, check=0)
    wx("refresh", "--force", check=0)
    assert wx("export", check=0).stdout.strip() == handed["refresh_token"]


def test_hostile_names_never_reach_the_terminal_raw(
    wx: Wx, emulator_factory: Any, tmp_path: Path
) -> None:
    """A display name and email with escape sequences and rich markup: status exits 0, and
    neither escapes nor markup errors reach the terminal."""
    config = tmp_path / "emu.toml"
    config.write_text(
        '[[users]]\nemail = "[/]ev\\u001b]0;x\\u0007il@example.com"\n'
        'display_name = "\\u001b[31mRed [bold]Admin[/]\\u001b]52;c;aGk=\\u0007"\n'
        'org_id = "1eb65fdf-9643-417f-9974-ad72cae0e10f"\nroles = ["Full_Admin"]\n'
        f'[[integrations]]\nclient_id = "C{"a" * 64}"\nclient_secret = "{"b" * 64}"\n'
        'redirect_uris = []\nscopes = ["spark:kms", "spark:people_read", '
        '"identity:tokens_write", "identity:tokens_read", "spark-compliance:recordings_read"]\n'
    )
    emu = emulator_factory("--config", str(config))
    wx.add_profile(emu)
    proc = wx.login()
    assert proc.returncode == 0, proc.stderr
    for args in (["status"], ["verify"], ["status", "--json"]):
        proc = wx(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        for text in (proc.stdout, proc.stderr):
            assert "\x1b" not in text and "\x07" not in text
    assert "[/]" in wx("status", check=0).stdout  # shown as text, not taken as markup
