"""The library's public surface: exactly `__all__`, documented, and closed under its signatures."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

import wxtoken

EXPECTED = {
    "TokenRow",
    "RecordTx",
    "RecordStore",
    "ProfileRow",
    "RoleNeed",
    "RecorderCopy",
    "Probe",
    "ExpiryTrend",
    "ClientCredentials",
    "CodeGrant",
    "ConsentDenied",
    "CorruptStore",
    "DeviceAuthorization",
    "DeviceCodeGrant",
    "Event",
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
    "Profile",
    "ProfileNotFound",
    "ProfileStatus",
    "RedirectUriRejected",
    "RefreshGrant",
    "RefreshReason",
    "RefreshResult",
    "Rejected",
    "Response",
    "RetryPolicy",
    "Scheduled",
    "Settings",
    "StateMismatch",
    "StorageError",
    "TamperedData",
    "Token",
    "TokenManager",
    "TokenRecord",
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
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(wxtoken.__all__) == EXPECTED
    assert len(wxtoken.__all__) == len(EXPECTED), "no duplicates"
    assert sorted(dir(wxtoken)) == sorted(EXPECTED)
    for name in wxtoken.__all__:
        assert getattr(wxtoken, name) is not None
    with pytest.raises(AttributeError):
        wxtoken.nope  # noqa: B018
    assert Path(wxtoken.__file__).with_name("py.typed").exists()


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys, wxtoken\n"
        "print([m for m in ('wxtoken.manager', 'httpx2', 'click', 'rich', 'cryptography') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _public_classes() -> list[type]:
    return [v for n in wxtoken.__all__ if isinstance(v := getattr(wxtoken, n), type)]


def test_every_public_class_has_its_own_docstring() -> None:
    undocumented = [
        cls.__name__
        for cls in _public_classes()
        # A dataclass without a docstring gets "Name(field: type, ...)" generated for it.
        if not (cls.__doc__ or "").strip() or (cls.__doc__ or "").startswith(f"{cls.__name__}(")
    ]
    assert undocumented == []


def _wxtoken_types(hint: object) -> set[type]:
    """Every class defined by wxtoken that appears anywhere inside a type hint."""
    found: set[type] = set()
    stack = [hint]
    while stack:
        h = stack.pop()
        if isinstance(h, type) and h.__module__.split(".")[0] == "wxtoken":
            found.add(h)
        stack.extend(typing.get_args(h))
        if isinstance(h, types.UnionType):
            stack.extend(h.__args__)
    return found


def _signatures() -> list[tuple[str, object]]:
    """(where, callable) for every public function, class constructor and public method."""
    items: list[tuple[str, object]] = []
    for name in wxtoken.__all__:
        value = getattr(wxtoken, name)
        if inspect.isfunction(value):
            items.append((name, value))
        elif isinstance(value, type):
            items.append((name, vars(value).get("__init__", value)))
            for attr, member in vars(value).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property) and member.fget is not None:
                    items.append((f"{name}.{attr}", member.fget))
                elif inspect.isfunction(member):
                    items.append((f"{name}.{attr}", member))
    return items


def test_every_type_in_a_public_signature_is_exported() -> None:
    exported = {getattr(wxtoken, n) for n in wxtoken.__all__}
    missing: dict[str, set[str]] = {}
    for where, fn in _signatures():
        module = importlib.import_module(getattr(fn, "__module__", "wxtoken"))
        try:
            hints = typing.get_type_hints(fn, vars(module))
        except NameError:
            # Annotations that name TYPE_CHECKING-only imports: resolve those from wxtoken too.
            hints = typing.get_type_hints(
                fn, {**vars(module), **vars(wxtoken), "httpx2": _httpx2()}
            )
        for hint in hints.values():
            for t in _wxtoken_types(hint):
                if t not in exported:
                    missing.setdefault(where, set()).add(t.__name__)
    assert missing == {}


def _httpx2() -> types.ModuleType:
    import httpx2

    return httpx2
