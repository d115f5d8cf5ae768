"""Who a grant belongs to: the person and org, from /v1/people/me or the token itself.

Pure parsing of what Webex reports; values are kept as Webex gives them (after sanitising for
display elsewhere), except the org, which is reduced to its UUID so it compares equal whether
it came from people/me (base64 of `ciscospark://us/ORGANIZATION/<uuid>`) or from a token's
`_<cluster>_<org uuid>` suffix.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


@dataclass(frozen=True)
class Identity:
    """Who signed in, from /v1/people/me (or only the org, read from the token suffix)."""

    org_id: str | None = None
    person_id: str | None = None
    email: str | None = None
    display_name: str | None = None

    @property
    def known_person(self) -> bool:
        return self.email is not None or self.person_id is not None


def org_id_from_token(token: str) -> str | None:
    """Webex opaque tokens end in `_<cluster>_<org UUID>`; None for any other shape."""
    parts = token.rsplit("_", 2)
    if len(parts) == 3 and _UUID_RE.fullmatch(parts[2]):
        return parts[2].lower()
    return None


def org_uuid(org_id: Any) -> str | None:
    """The UUID inside a Webex org id (base64 of a ciscospark:// URI), or a bare UUID."""
    if not isinstance(org_id, str):
        return None
    if _UUID_RE.fullmatch(org_id):
        return org_id.lower()
    try:
        decoded = base64.b64decode(org_id + "=" * (-len(org_id) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    tail = decoded.rsplit("/", 1)[-1]
    return tail.lower() if _UUID_RE.fullmatch(tail) else None


def identity_from_person(me: Mapping[str, Any], fallback_org: str | None) -> Identity:
    """An Identity from a /v1/people/me answer; fields of the wrong type are left out."""
    emails = me.get("emails")
    email = (
        emails[0] if isinstance(emails, list) and emails and isinstance(emails[0], str) else None
    )
    return Identity(
        org_id=org_uuid(me.get("orgId")) or fallback_org,
        person_id=_str(me.get("id")),
        email=email,
        display_name=_str(me.get("displayName")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def role_names(me: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The role names in a people/me answer (Webex sends base64 ids of
    `ciscospark://us/ROLE/<name>`); None when Webex reported no roles at all."""
    roles = me.get("roles")
    if not isinstance(roles, list):
        return None
    names = []
    for role in roles:
        if not isinstance(role, str):
            continue
        try:
            decoded = base64.b64decode(role + "=" * (-len(role) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = role
        names.append(decoded.rsplit("/", 1)[-1])
    return tuple(names)
