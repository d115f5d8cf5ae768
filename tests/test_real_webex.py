"""Against real Webex: opt-in only (no machine here reaches Webex).

    WXTOKEN_REAL_WEBEX=1 WXTOKEN_REAL_PROFILE=NAME make test

NAME must be a profile already signed in (`wxtoken login -p NAME`) in the WXTOKEN_HOME of the
environment, with its key source available. The test refreshes once and verifies.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import WXTOKEN

pytestmark = pytest.mark.skipif(
    os.environ.get("WXTOKEN_REAL_WEBEX") != "1" or not os.environ.get("WXTOKEN_REAL_PROFILE"),
    reason="real Webex is opt-in: set WXTOKEN_REAL_WEBEX=1 and WXTOKEN_REAL_PROFILE",
)


def test_refresh_and_verify_against_webex() -> None:
    profile = os.environ["WXTOKEN_REAL_PROFILE"]
    refresh = subprocess.run(
        [WXTOKEN, "refresh", "--force", "-p", profile], capture_output=True, text=True, timeout=120
    )
    assert refresh.returncode == 0, refresh.stderr
    verify = subprocess.run(
        [WXTOKEN, "verify", "--json", "-p", profile], capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["org_id"]
