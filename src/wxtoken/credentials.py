"""Which client secret a token request carries while the integration's secret is rotated.

A profile holds one client secret, or two during a rotation (`profile set --add-client-secret`).
A request goes with the newest; if Webex answers invalid_client, it goes again with the older.
Resending is safe for every grant: the token endpoint authenticates the client before it looks
at the grant (RFC 6749 §3.2.1), so a refused secret consumed no code and no refresh token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import causes
from .errors import InvalidClient
from .grants import ClientCredentials, Grant
from .token import Token

if TYPE_CHECKING:
    from .client import WebexClient


def exchange(
    client: WebexClient, grant: Grant, client_id: str, secrets: tuple[str, ...], profile: str
) -> tuple[Token, bool]:
    """The token, and whether only the older of two secrets was accepted."""
    for held, secret in enumerate(secrets):
        try:
            return client.exchange(grant, ClientCredentials(client_id, secret)), held > 0
        except InvalidClient as exc:
            if held + 1 < len(secrets):
                continue
            if len(secrets) == 1:
                raise
            raise exc.restated(
                f"Webex rejected both client secrets of {profile!r} ({causes.answered(exc)})",
                "enter the integration's current secret (developer.webex.com > My Webex Apps): "
                f"wxtoken profile set {profile} --client-secret-stdin",
            ) from None
    raise AssertionError("a profile always holds a client secret")
