"""wxtoken: create, store, refresh, hand over and watch OAuth tokens for Webex integrations.

The public surface is `__all__`; every type that appears in a public signature is in it (a test
checks). Names are loaded on first use (PEP 562), so importing the package, as the `wxtoken`
command does, costs nothing: `wxtoken token` must stay fast.

    from wxtoken import TokenManager
    with TokenManager("recorder") as tm:
        token = tm.access_token(min_valid=600)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._local import Settings
    from .admin import add_profile
    from .auth import WebexAuth
    from .client import Response, RetryPolicy, WebexClient
    from .errors import (
        ConsentDenied,
        CorruptStore,
        Forbidden,
        InvalidClient,
        InvalidGrant,
        InvalidScope,
        KeySourceError,
        LoginRequired,
        MalformedResponse,
        NoTokens,
        OAuthError,
        OrgMismatch,
        ProfileNotFound,
        RedirectUriRejected,
        StateMismatch,
        StorageError,
        TamperedData,
        UnsafePermissions,
        UsageError,
        WebexUnavailable,
        WrongKey,
        WxtokenError,
    )
    from .grants import (
        ClientCredentials,
        CodeGrant,
        DeviceAuthorization,
        DeviceCodeGrant,
        Grant,
        RefreshGrant,
    )
    from .identity import Identity
    from .manager import TokenManager
    from .profile import Profile, make_profile
    from .reasons import Forced, Needed, RefreshReason, Rejected, Scheduled
    from .results import HandOff, LoginResult, RefreshResult, RoleNeed, VerifyResult
    from .status import ProfileStatus
    from .store import (
        Event,
        ExpiryTrend,
        Probe,
        RecorderCopy,
        TokenRecord,
        TokenStore,
        open_store,
    )
    from .store.records import Leadership, ProfileRow, RecordStore, RecordTx, TokenRow
    from .token import Token, TokenState

# name -> the module that defines it
_WHERE = {
    "Settings": "_local",
    "add_profile": "admin",
    "WebexAuth": "auth",
    "Response": "client",
    "RetryPolicy": "client",
    "WebexClient": "client",
    **dict.fromkeys(
        (
            "ConsentDenied",
            "CorruptStore",
            "Forbidden",
            "InvalidClient",
            "InvalidGrant",
            "InvalidScope",
            "KeySourceError",
            "LoginRequired",
            "MalformedResponse",
            "NoTokens",
            "OAuthError",
            "OrgMismatch",
            "ProfileNotFound",
            "RedirectUriRejected",
            "StateMismatch",
            "StorageError",
            "TamperedData",
            "UnsafePermissions",
            "UsageError",
            "WebexUnavailable",
            "WrongKey",
            "WxtokenError",
        ),
        "errors",
    ),
    **dict.fromkeys(
        (
            "ClientCredentials",
            "CodeGrant",
            "DeviceAuthorization",
            "DeviceCodeGrant",
            "Grant",
            "RefreshGrant",
        ),
        "grants",
    ),
    "Identity": "identity",
    "TokenManager": "manager",
    "Profile": "profile",
    "make_profile": "profile",
    **dict.fromkeys(("Forced", "Needed", "RefreshReason", "Rejected", "Scheduled"), "reasons"),
    **dict.fromkeys(
        ("HandOff", "LoginResult", "RefreshResult", "RoleNeed", "VerifyResult"), "results"
    ),
    "ProfileStatus": "status",
    **dict.fromkeys(
        (
            "Event",
            "ExpiryTrend",
            "Probe",
            "RecorderCopy",
            "TokenRecord",
            "TokenStore",
            "open_store",
        ),
        "store",
    ),
    **dict.fromkeys(
        ("Leadership", "ProfileRow", "RecordStore", "RecordTx", "TokenRow"), "store.records"
    ),
    "Token": "token",
    "TokenState": "token",
}

__all__ = [
    "ClientCredentials",
    "CodeGrant",
    "ConsentDenied",
    "CorruptStore",
    "DeviceAuthorization",
    "DeviceCodeGrant",
    "Event",
    "ExpiryTrend",
    "Forbidden",
    "Forced",
    "Grant",
    "HandOff",
    "Identity",
    "InvalidClient",
    "InvalidGrant",
    "InvalidScope",
    "KeySourceError",
    "Leadership",
    "LoginRequired",
    "LoginResult",
    "MalformedResponse",
    "Needed",
    "NoTokens",
    "OAuthError",
    "OrgMismatch",
    "Probe",
    "Profile",
    "ProfileNotFound",
    "ProfileRow",
    "ProfileStatus",
    "RecordStore",
    "RecordTx",
    "RecorderCopy",
    "RedirectUriRejected",
    "RefreshGrant",
    "RefreshReason",
    "RefreshResult",
    "Rejected",
    "Response",
    "RetryPolicy",
    "RoleNeed",
    "Scheduled",
    "Settings",
    "StateMismatch",
    "StorageError",
    "TamperedData",
    "Token",
    "TokenManager",
    "TokenRecord",
    "TokenRow",
    "TokenState",
    "TokenStore",
    "UnsafePermissions",
    "UsageError",
    "VerifyResult",
    "WebexAuth",
    "WebexClient",
    "WebexUnavailable",
    "WrongKey",
    "WxtokenError",
    "__version__",
    "add_profile",
    "make_profile",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'wxtoken' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
