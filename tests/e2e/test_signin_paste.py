"""Paste mode against login CSRF: a pasted address must carry this sign-in's state.

An attacker who hands an admin an address holding the attacker's own code (state removed) would
otherwise bind the recorder to the attacker's account. A bare code has no state either: only
`wxtoken exchange`, which says it checks none, redeems one.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from tests.conftest import Emulator, Wx

PASTE_REDIRECT = "https://oauth.pstmn.io/v1/callback"


def attackers_code(emu: Emulator) -> str:
    """A code the attacker obtained for their own sign-in (the emulator approves at once)."""
    query = urllib.parse.urlencode(
        {
            "client_id": emu.client_id,
            "response_type": "code",
            "redirect_uri": PASTE_REDIRECT,
            "scope": "spark:kms spark:people_read",
            "state": "the-attackers-own-state",
        }
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    emu.policy(auto_approve=True)
    try:
        urllib.request.build_opener(NoRedirect).open(
            f"{emu.base_url}/v1/authorize?{query}", timeout=10
        )
    except urllib.error.HTTPError as exc:
        location = str(exc.headers["location"])
    finally:
        emu.policy(auto_approve=False)
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]


def token_requests(emu: Emulator) -> list[dict[str, object]]:
    return [e for e in emu.ledger() if e["endpoint"] == "access_token"]


def test_pasted_address_without_state_is_refused(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, redirect_uri=PASTE_REDIRECT)
    code = attackers_code(emu)
    proc = wx("login", "--no-browser", "--paste", input=f"{PASTE_REDIRECT}?code={code}\n")
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "no state" in line and "fix:" in line and "wxtoken login -p rec --paste" in line
    assert token_requests(emu) == [], "the attacker's code was never redeemed"
    assert code not in proc.stderr


def test_bare_code_is_refused_by_login_and_taken_by_exchange(wx: Wx, emu: Emulator) -> None:
    wx.add_profile(emu, redirect_uri=PASTE_REDIRECT)
    code = attackers_code(emu)
    proc = wx("login", "--no-browser", "--paste", input=code + "\n")
    assert proc.returncode == 1, proc.stderr
    assert "wxtoken exchange --code -" in proc.stderr
    assert token_requests(emu) == []
    # `exchange` is the one place a code without state is redeemed, and its help says so.
    helptext = wx("exchange", "--help", check=0).stdout
    assert "no state" in helptext.lower()
    wx("exchange", "--code", "-", input=code + "\n", check=0)
    assert len(token_requests(emu)) == 1
