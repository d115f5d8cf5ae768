"""Metadata written back by a probe or an export never overwrites a newer refresh.

A probe and an export read the token record, talk to Webex or build a hand-off, then write the
record back. A refresh in between stores a new token whose sealed value is bound to its new
expiry; writing the older record over it (its expiry, its generation) made the new token fail
its integrity check, which only a new sign-in recovered.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tests.conftest import Emulator, Wx, store_at
from wxtoken import TokenManager
from wxtoken.errors import WxtokenError


def test_probes_and_exports_beside_refreshes_leave_the_token_readable(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, _ = logged_in
    store = store_at(Path(wx.env["WXTOKEN_HOME"]), wx.env)
    failures: list[str] = []

    def work(action: str) -> None:
        for _ in range(12):
            tm = TokenManager("rec", store=store)
            try:
                if action == "refresh":
                    tm.refresh()
                elif action == "probe":
                    tm.probe()
                else:
                    tm.export("verint")
            except WxtokenError as exc:
                failures.append(f"{action}: {exc.message}")

    threads = [
        threading.Thread(target=work, args=(action,))
        for action in ("refresh", "refresh", "probe", "probe", "export", "export")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    loaded = store.load_token("rec")  # decrypts: nothing was overwritten with a stale record
    assert loaded is not None and loaded[0].status == "ok"
    assert TokenManager("rec", store=store).access_token()
