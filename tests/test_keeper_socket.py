"""The keeper's local servers against peers that misbehave: every peer gets one JSON error line
(exit_code 2) or silence, and the keeper's log stays free of tracebacks.

The real `wxtoken keep` process is the server; the hostile peers are raw sockets in this test.
The request parser is also checked on its own, input by input.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Emulator, Wx, assert_no_secret, store_at, wait_until
from tests.test_keeper import start_keep
from wxtoken._local import MAX_MIN_VALID
from wxtoken.keeper.protocol import (
    MAX_DEPTH,
    MAX_REQUEST,
    BadRequest,
    Ping,
    TokenRequest,
    parse_request,
)

# --- the parser --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"ping": true}\n', Ping()),
        (b'{"profile": "rec", "min_valid": 600}\n', TokenRequest("rec", 600.0)),
        (b'{"profile": null}\n', TokenRequest(None, 300.0)),
        (b'{"min_valid": 0.5}', TokenRequest(None, 0.5)),
        (b'{"profile": "rec", "min_valid": 100000000}\n', TokenRequest("rec", 1e8)),
        (b'  {"profile": "rec", "later": [1, {"x": 2}]}  \n', TokenRequest("rec", 300.0)),
    ],
)
def test_parser_accepts_what_clients_send(line: bytes, expected: object) -> None:
    assert parse_request(line) == expected


HOSTILE_LINES = {
    "empty": b"",
    "blank": b"\n",
    "half a line": b'{"profile": "re',
    "too long": b'{"profile": "' + b"x" * MAX_REQUEST + b'"}\n',
    "invalid UTF-8": b'{"profile": "\xff\xfe"}\n',
    "a JSON list": b"[1, 2]\n",
    "a JSON string": b'"rec"\n',
    "null": b"null\n",
    "nested lists": b"[" * (MAX_REQUEST - 1) + b"\n",
    "nested objects": b'{"a":' * 600 + b"1" + b"}" * 600 + b"\n",
    "nested one too deep": b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
    "min_valid 1e999": b'{"profile": "rec", "min_valid": 1e999}\n',
    "min_valid -1e999": b'{"min_valid": -1e999}\n',
    "min_valid NaN": b'{"profile": "rec", "min_valid": NaN}\n',
    "min_valid Infinity": b'{"profile": "rec", "min_valid": Infinity}\n',
    "min_valid negative": b'{"profile": "rec", "min_valid": -1}\n',
    "min_valid too large": b'{"profile": "rec", "min_valid": 100000001}\n',
    "min_valid a huge integer": b'{"min_valid": ' + b"9" * 4000 + b"}\n",
    "min_valid a string": b'{"profile": "rec", "min_valid": "300"}\n',
    "min_valid true": b'{"profile": "rec", "min_valid": true}\n',
    "min_valid null": b'{"profile": "rec", "min_valid": null}\n',
    "profile a number": b'{"profile": 5}\n',
    "profile a list": b'{"profile": ["rec"]}\n',
    "profile an object": b'{"profile": {"name": "rec"}}\n',
    "profile not a name": b'{"profile": "../../etc/passwd"}\n',
    "profile with a newline": b'{"profile": "rec\\nforged log line"}\n',
    "profile empty": b'{"profile": ""}\n',
    "two objects": b'{"ping": true} {"ping": true}\n',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_parser_refuses_with_a_reason_that_echoes_nothing(name: str) -> None:
    line = HOSTILE_LINES[name]
    with pytest.raises(BadRequest) as info:
        parse_request(line)
    reason = str(info.value)
    assert reason and "\n" not in reason and len(reason) < 120
    assert "passwd" not in reason and "forged" not in reason and "9999" not in reason


def test_parser_bounds_are_exact() -> None:
    assert MAX_MIN_VALID == 10**8 and MAX_REQUEST == 4096  # the documented figures
    head, tail = b'{"profile": "rec", "pad": "', b'"}\n'
    fits = head + b"x" * (MAX_REQUEST - len(head) - len(tail)) + tail
    assert len(fits) == MAX_REQUEST and parse_request(fits) == TokenRequest("rec", 300.0)
    with pytest.raises(BadRequest):
        parse_request(head + b"x" * (MAX_REQUEST - len(head) - len(tail) + 1) + tail)
    deepest = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert parse_request(deepest) == TokenRequest(None, 300.0)
    brackets_in_a_string = b'{"profile": "rec", "note": "' + b"[{" * 100 + b'\\"]"}'
    assert parse_request(brackets_in_a_string) == TokenRequest("rec", 300.0)


# --- the real process against hostile peers ----------------------------------------------------


def talk(path: str, data: bytes, mode: str, timeout: float = 20.0) -> bytes:
    """Send `data` and return every byte the keeper sent back before it closed.

    mode: "close" hangs up right after sending (without reading); "shut" ends sending, then
    reads; "read" reads while still able to send (a huge line is sent from another thread).
    """
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    sender_done = threading.Event()

    def send() -> None:
        try:
            s.sendall(data)
        except OSError:
            pass  # the keeper stopped reading a huge line and closed: expected
        sender_done.set()

    if mode == "close":
        send()
        s.close()
        return b""
    if len(data) > 65536:
        threading.Thread(target=send, daemon=True).start()
    else:
        send()
    if mode == "shut":
        s.shutdown(socket.SHUT_WR)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    return got


def one_error_or_silence(got: bytes) -> dict[str, object] | None:
    if not got:
        return None
    assert got.count(b"\n") == 1 and got.endswith(b"\n"), got[:200]
    answer = json.loads(got)
    shown = {k: v for k, v in answer.items() if k != "access_token"}  # never print a token
    assert answer["ok"] is False and answer["exit_code"] == 2, shown
    return dict(answer)


def test_hostile_peers_get_an_error_line_or_silence_and_no_traceback(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, emu = logged_in
    keeper = start_keep(wx)
    path = str(Path(wx.env["WXTOKEN_HOME"]) / "keeper.sock")
    try:
        assert wait_until(lambda: Path(path).exists())
        # A peer that sends half a line and then waits: the keeper gives up on it by itself.
        idle = socket.socket(socket.AF_UNIX)
        idle.connect(path)
        idle.sendall(b'{"profile": "re')
        idle_since = time.monotonic()

        answered = 0
        for name, line in sorted(HOSTILE_LINES.items()):
            for mode in ("close", "shut"):
                got = talk(path, line, mode)
                if mode == "shut" and line.strip():
                    assert one_error_or_silence(got) is not None, name
                    answered += 1
        # Bigger than any buffer: the keeper reads its bound, answers, and closes.
        one_error_or_silence(talk(path, b"[" * (1 << 20) + b"\n", "read"))
        one_error_or_silence(talk(path, b"x" * (1 << 20), "read"))
        # Good requests whose answer nobody reads: a pong and a token written to a closed peer.
        talk(path, b'{"ping": true}\n', "close")
        talk(path, b'{"profile": "rec"}\n', "close")
        for _ in range(3):
            with socket.socket(socket.AF_UNIX) as s:  # reset instead of a clean close
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.connect(path)
                s.sendall(b'{"profile": "rec"}\n')
        # The metrics port, too: a request dropped with a reset, garbage, a huge header.
        host, port = keeper.url.removeprefix("http://").rsplit(":", 1)
        for data in (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\xff\xfe\x00garbage\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n",
        ):
            with socket.create_connection((host, int(port)), timeout=10) as c:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                try:
                    c.sendall(data)
                except OSError:
                    pass
        # The half-line peer is dropped after the keeper's read timeout, without an answer.
        idle.settimeout(30)
        assert idle.recv(100) == b""
        assert time.monotonic() - idle_since < 25
        idle.close()
        # Still serving, politely and correctly.
        pong = talk(path, b'{"ping": true}\n', "shut")
        answer = json.loads(pong)
        assert answer["ok"] is True and answer["pong"] is True
        assert set(answer) == {"ok", "pong", "metrics"}  # what doctor shows; nothing secret
        good = json.loads(talk(path, b'{"profile": "rec", "min_valid": 60}\n', "shut"))
        assert good["ok"] is True
        assert urllib.request.urlopen(f"{keeper.url}/healthz", timeout=10).status == 200
        assert answered >= len(HOSTILE_LINES) - 2
        time.sleep(0.5)  # let any late handler thread write what it would write
    finally:
        code = keeper.stop()
    log = keeper.log()
    assert code == 0, log
    assert "Traceback" not in log and "Exception occurred" not in log, log
    assert not re.search(r"\b\w+(Error|Exception)\b", log), log
    loaded = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env).load_token("rec")
    assert loaded is not None and loaded[1].refresh_token is not None
    assert_no_secret([log], [loaded[1].access_token, loaded[1].refresh_token, emu.client_secret])
