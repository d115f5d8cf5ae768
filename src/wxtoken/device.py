"""Webex's device grant (RFC 8628 as Webex serves it): the facts every part agrees on.

Paths, the grant type, the helper redirect URIs an integration must list, the scopes the grant
refuses, and RFC 8628's slow_down step. Imports nothing, so the grant types, the reading of
Webex's errors, the sign-in loop and the emulator all take them from here.
"""

from __future__ import annotations

DEVICE_AUTHORIZE_PATH = "/v1/device/authorize"
DEVICE_TOKEN_PATH = "/v1/device/token"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# Webex's verification page finishes the sign-in by redirecting through one of these helpers,
# so each must be registered on the integration. Webex's developer guide lists four in one
# place and three (a, k, r) in another; registering all four costs nothing.
DEVICE_HELPER_REDIRECT_URIS = tuple(
    f"https://oauth-helper-{region}.wbx2.com/helperservice/v1/actions/device/callback"
    for region in ("a", "r", "k", "d")
)
# Webex: "Device Grant flow does not support OpenID Connect scopes".
OIDC_SCOPES = frozenset({"openid", "email", "profile", "phone", "address"})
# RFC 8628 §3.5: every slow_down adds five seconds to the polling interval, for good.
SLOW_DOWN_STEP = 5
