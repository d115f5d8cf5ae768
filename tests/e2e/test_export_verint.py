"""`export --format verint`: the fields of Verint's Webex data-source form, as Verint labels
them, with the refresh token's expiry and the adapter's 60-day rule; the hand-off recorded."""

from __future__ import annotations

import json
import re

from tests.conftest import Emulator, Wx


def test_verint_export_fills_the_data_source_form_and_records_the_hand_off(
    logged_in: tuple[Wx, Emulator],
) -> None:
    wx, emu = logged_in
    plain = json.loads(wx("export", "--format", "json", check=0).stdout)
    out = wx("export", "-p", "rec", "--format", "verint", check=0)
    labelled = re.compile(r"(Client ID|Client Secret|Refresh Token):\s+(\S+)")
    found = [labelled.fullmatch(line) for line in out.stdout.splitlines()]
    fields = {m[1]: m[2] for m in found if m}
    assert fields == {
        "Client ID": emu.client_id,
        "Client Secret": emu.client_secret,
        "Refresh Token": plain["refresh_token"],
    }
    assert f"Refresh token expiry: {plain['refresh_expires_at']}" in out.stdout
    assert "must run at least every 60 days" in out.stdout
    assert "Exported 'rec' (verint)" in out.stderr
    [row] = json.loads(wx("status", "--json", check=0).stdout)
    assert row["recorder_copy"]["state"] == "current"
    assert row["recorder_copy"]["format"] == "verint"
    exports = [
        json.loads(line)
        for line in wx("log", "--kind", "export", "--json", check=0).stdout.splitlines()
    ]
    assert [e["detail"]["format"] for e in exports] == ["json", "verint"]
    assert plain["refresh_token"] not in json.dumps(exports)
    assert emu.client_secret not in json.dumps(exports)
