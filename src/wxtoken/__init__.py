"""wxtoken: create, store, refresh, hand over and watch OAuth tokens for Webex integrations.

The public surface is `__all__`. Names are loaded on first use (PEP 562), so importing the
package, as the `wxtoken` command does, costs nothing: `wxtoken token` must stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .auth import WebexAuth
    from .errors import (
        ConsentDenied,
        InvalidClient,
        InvalidGrant,
        LoginRequired,
        MalformedResponse,
        NoTokens,
        OAuthError,
        StorageError,
        UsageError,
        WebexUnavailable,
        WxtokenError,
    )
    from .manager import TokenManager
    from .profile import Profile
    from .token import Token, TokenState

__all__ = [
    "ConsentDenied",
    "InvalidClient",
    "InvalidGrant",
    "LoginRequired",
    "MalformedResponse",
    "NoTokens",
    "OAuthError",
    "Profile",
    "StorageError",
    "Token",
    "TokenManager",
    "TokenState",
    "UsageError",
    "WebexAuth",
    "WebexUnavailable",
    "WxtokenError",
    "__version__",
]

_WHERE = {
    "WebexAuth": "auth",
    "TokenManager": "manager",
    "Profile": "profile",
    "Token": "token",
    "TokenState": "token",
}


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        import importlib

        module = importlib.import_module(f".{_WHERE.get(name, 'errors')}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wxtoken' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
