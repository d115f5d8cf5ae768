"""What each sealed value is bound to: the associated data of AES-GCM, so a value copied to
another row, field or profile, or a setting edited in the file, fails to open.

Kept apart from the sealing itself so the key's unlocking (which re-seals secrets when the
layout changes) and the sealed store use one rule.
"""

from __future__ import annotations

import json

from .. import _format as fmt
from ..profile import Profile
from .cipher import CURRENT_LAYOUT
from .records import ProfileRow


def secret_ad(
    p: Profile | ProfileRow, layout: int = CURRENT_LAYOUT, field: str = "client_secret"
) -> str:
    """Associated data of a profile's sealed client secret (`field` "old_client_secret" for
    the older one held during a rotation, so the two cannot be swapped in the file).

    Layout 2 binds every setting that decides where the secret and tokens are sent, so editing
    the base URL or redirect URI in the database file (which needs no key) makes the secret
    fail to open instead of sending it to another server.
    """
    if layout == 1:
        return fmt.ad(p.name, field, p.client_id)
    bound = [p.kind, p.client_id, p.redirect_uri, p.base_url, list(p.scopes), dict(p.extra)]
    return fmt.ad(p.name, field, json.dumps(bound, sort_keys=True, separators=(",", ":")))


OLD_SECRET = "old_client_secret"


def token_ad(name: str, field: str, expires_at: float | None) -> str:
    return fmt.ad(name, field, fmt.exp(expires_at))
