"""`/v1/authorize` and its consent page: checking the request, asking, and issuing the code.

The checks follow RFC 6749 §4.1.2.1: an unknown client or an unregistered redirect URI is
answered in place (never redirected), every later problem is redirected to the client with
`error` and the caller's `state`. `authorization_code` is the same flow for in-process tests: it
goes through the same checks and the same consent transaction, approving as a chosen user.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

from . import causes
from .model import BLOCKED_BY_ADMIN, MSG_400, OIDC_SCOPES, Code, Integration, Reply, User

if TYPE_CHECKING:
    from .state import Emulator


@dataclass(frozen=True)
class ConsentRequest:
    """An authorize request that passed every check, waiting for the user's decision."""

    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool  # the exchange must then repeat it (RFC 6749 §4.1.3)
    scopes: tuple[str, ...]
    state: str | None
    challenge: str | None
    method: str | None


@dataclass(frozen=True)
class Refusal:
    """Why an authorize request fails, and what the browser is shown (a page or a redirect)."""

    reply: Reply
    error: str
    description: str


class AuthorizeRefused(Exception):
    """Raised by `authorization_code` where a browser would see an error page or redirect."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"authorize refused: {error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def with_query(uri: str, params: Mapping[str, str]) -> str:
    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}{urlencode(params)}"


def check(
    emu: Emulator, params: Mapping[str, list[str]], tracking: str
) -> ConsentRequest | Refusal:
    """The request's checks in Webex's order."""

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    client_id = one("client_id")

    def page(error: str, desc: str, ledger_error: str) -> Refusal:
        emu.record("authorize", 400, client_id=client_id, error=ledger_error)
        return Refusal(emu.error(400, MSG_400, desc, tracking, error), error, desc)

    integ = emu.integrations.get(client_id or "")
    if integ is None:
        return page("invalid_client", "Client Id is invalid", "invalid_client")
    redirect = one("redirect_uri")
    if redirect is None:
        if len(integ.redirect_uris) != 1:
            return page("invalid_request", "redirect_uri is required", "redirect_uri")
        redirect = integ.redirect_uris[0]
    elif redirect not in integ.redirect_uris:
        # Never redirect to an unregistered URI: that is how codes get stolen.
        desc = "redirect_uri does not match a registered URI"
        return page("invalid_request", desc, "redirect_uri_mismatch")
    state = one("state")

    def bounce(error: str, desc: str, cause: str | None = None) -> Refusal:
        emu.record("authorize", 302, client_id=client_id, error=error, cause=cause)
        q = {"error": error, "error_description": desc}
        if state is not None:
            q["state"] = state
        return Refusal(Reply(302, None, {"location": with_query(redirect, q)}), error, desc)

    if one("response_type") != "code":
        return bounce("unsupported_response_type", "response_type must be code")
    scope_text = one("scope")
    if not scope_text or not scope_text.split():
        return bounce("invalid_scope", "scope is required")
    scopes = tuple(dict.fromkeys(scope_text.split()))
    unknown = [s for s in scopes if s not in integ.scopes and s not in OIDC_SCOPES]
    if unknown:
        return bounce("invalid_scope", f"scope not registered: {' '.join(unknown)}")
    challenge, method = one("code_challenge"), one("code_challenge_method")
    if challenge is not None:
        if method is None:
            if not emu.policy.pkce_plain_without_method:
                return bounce("invalid_request", "code_challenge_method is required")
            method = "plain"  # RFC 7636 §4.3
        if method not in ("S256", "plain"):
            return bounce("invalid_request", "code_challenge_method must be S256 or plain")
    elif method is not None:
        return bounce("invalid_request", "code_challenge_method without code_challenge")
    if integ.blocked:
        return bounce("access_denied", BLOCKED_BY_ADMIN, causes.BLOCKED)
    if one("prompt") == "none":
        return bounce("login_required", "no active session")
    return ConsentRequest(
        client_id=integ.client_id,
        redirect_uri=redirect,
        redirect_uri_sent=one("redirect_uri") is not None,
        scopes=scopes,
        state=state,
        challenge=challenge,
        method=method,
    )


def authorize(emu: Emulator, params: Mapping[str, list[str]], tracking: str) -> Reply:
    """GET /v1/authorize: a refusal, the consent page, or (auto-approve) the code redirect."""
    req = check(emu, params, tracking)
    if isinstance(req, Refusal):
        return req.reply
    if emu.policy.auto_approve:
        return decide(emu, req, approve=True, user_uuid=emu.consent_user)
    txn_id = open_consent(emu, req)
    integ = emu.integrations[req.client_id]
    user = emu.users.get(emu.consent_user or "")
    return Reply(200, consent_page(txn_id, integ, user, req.scopes), {})


def open_consent(emu: Emulator, req: ConsentRequest) -> str:
    txn_id = secrets.token_urlsafe(24)
    emu.consents[txn_id] = req
    emu.record("authorize", 200, client_id=req.client_id, outcome="consent_page")
    return txn_id


def consent(emu: Emulator, txn_id: str, decision: str, user_uuid: str | None = None) -> Reply:
    """POST /v1/authorize/consent: the user's decision; a transaction is answered once."""
    req = emu.consents.pop(txn_id, None)
    if req is None:
        emu.record("consent", 400, error="unknown_transaction")
        return Reply(400, "<p>This sign-in request has expired. Start again.</p>", {})
    who = emu.consent_user if user_uuid is None else user_uuid
    return decide(emu, req, approve=decision == "approve", user_uuid=who)


def decide(emu: Emulator, req: ConsentRequest, *, approve: bool, user_uuid: str | None) -> Reply:
    q: dict[str, str] = {}
    cause = None
    if not approve:
        q = {"error": "access_denied", "error_description": "The user denied the request"}
        outcome = "denied"
    else:
        user = emu.users.get(user_uuid or "")
        if user is None or not user.active:
            q = {"error": "access_denied", "error_description": "no active user"}
            outcome, cause = "denied", causes.DEACTIVATED
        else:
            code = emu.new_token(user.org_uuid)
            emu.codes[code] = Code(
                value=code,
                client_id=req.client_id,
                redirect_uri=req.redirect_uri,
                redirect_uri_sent=req.redirect_uri_sent,
                scopes=list(req.scopes),
                user_uuid=user.uuid,
                challenge=req.challenge,
                method=req.method,
                issued_at=emu.now(),
            )
            q = {"code": code}
            outcome = "approved"
    if req.state is not None:
        q["state"] = req.state
    error = q.get("error")
    emu.record("authorize", 302, client_id=req.client_id, outcome=outcome, error=error, cause=cause)
    return Reply(302, None, {"location": with_query(req.redirect_uri, q)})


def authorization_code(
    emu: Emulator,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    *,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
    user: str | None = None,
    state: str | None = None,
) -> str:
    """The browser's part of a sign-in, in process: authorize, then Accept on the consent page.

    `user` is an email (default: the consent user). Every check of `/v1/authorize` applies and
    the ledger records the same entries; a refusal raises `AuthorizeRefused`.
    """
    params = {
        "client_id": [client_id],
        "response_type": ["code"],
        "redirect_uri": [redirect_uri],
        "scope": [" ".join(scopes)],
    }
    extra = {"state": state, "code_challenge": code_challenge}
    extra["code_challenge_method"] = code_challenge_method
    params.update({k: [v] for k, v in extra.items() if v is not None})
    with emu.lock:
        user_uuid = emu.consent_user
        if user is not None:
            found = emu.user_by_email(user)
            if found is None:
                raise ValueError(f"no emulated user has the email {user!r}")
            user_uuid = found.uuid
        req = check(emu, params, emu.tracking_id(None))
        if isinstance(req, Refusal):
            raise AuthorizeRefused(req.error, req.description, req.reply.status)
        if emu.policy.auto_approve:
            reply = decide(emu, req, approve=True, user_uuid=user_uuid)
        else:
            reply = consent(emu, open_consent(emu, req), "approve", user_uuid)
        emu.save()
    query = parse_qs(urlsplit(reply.headers["location"]).query)
    if "code" not in query:
        raise AuthorizeRefused(query["error"][0], query["error_description"][0], reply.status)
    return query["code"][0]


def consent_page(txn_id: str, integ: Integration, user: User | None, scopes: Sequence[str]) -> str:
    who = escape(f"{user.display_name} <{user.email}>") if user else "nobody"
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Webex emulator: authorize {escape(integ.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem}}.note{{color:#666}}</style></head>
<body><h1>{escape(integ.name)} wants access</h1>
<p>Signed in as <strong>{who}</strong>.</p>
<p>It asks for these scopes:</p><ul>{items}</ul>
<form method="post" action="/v1/authorize/consent">
<input type="hidden" name="txn" value="{escape(txn_id)}">
<button type="submit" name="decision" value="approve" id="approve">Accept</button>
<button type="submit" name="decision" value="deny" id="deny">Decline</button>
</form>
<p class="note">This is the wxtoken Webex emulator, not Webex.</p></body></html>"""
