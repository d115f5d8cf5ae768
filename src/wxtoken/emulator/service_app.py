"""Service apps: `POST /v1/applications/{id}/token` mints a token pair for an authorized org.

The caller's bearer (an integration or another service app) must carry
`spark:applications_token`; the minted grant belongs to a machine account of the target org and
refreshes through the ordinary refresh grant with the service app's own credentials.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from .grants import issue_access, new_grant, token_body
from .model import MSG_400, MSG_403, MSG_404, Reply, User
from .resources import authorized

if TYPE_CHECKING:
    from .state import Emulator

FIELDS = ("clientId", "clientSecret", "targetOrgId")


def service_app_token(
    emu: Emulator, app_id: str, auth: str | None, body: Any, tracking: str
) -> Reply:
    endpoint = "applications_token"
    tok = authorized(emu, auth, tracking, endpoint, ("spark:applications_token",))
    if isinstance(tok, Reply):
        return tok
    app = emu.service_apps.get(app_id)
    if app is None:
        emu.record(endpoint, 404, error="unknown_app")
        return emu.error(404, MSG_404, "Application not found", tracking)
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in FIELDS):
        emu.record(endpoint, 400, error="bad_body")
        return emu.error(
            400, MSG_400, "clientId, clientSecret and targetOrgId are required", tracking
        )
    if body["clientId"] != app.client_id or not secrets.compare_digest(
        body["clientSecret"], app.client_secret
    ):
        emu.record(endpoint, 401, error="invalid_client")
        desc = "The provided clientSecret is invalid"
        return emu.error(401, "Invalid client credentials", desc, tracking)
    # The org may be named by its REST id or by the bare UUID that ends every token.
    target = body["targetOrgId"]
    org_uuid = next((u.org_uuid for u in emu.users.values() if u.org_id == target), target)
    if org_uuid not in app.authorized_org_uuids:
        emu.record(endpoint, 403, error="not_authorized")
        return emu.error(403, MSG_403, "The service app is not authorized in that org", tracking)
    machine = next(
        (
            u
            for u in emu.users.values()
            if u.org_uuid == org_uuid and u.email.startswith("machine-")
        ),
        None,
    )
    if machine is None:
        machine = emu.add_user(
            User(
                str(uuid.uuid4()),
                f"machine-{app.client_id[:8]}@example",
                org_uuid,
                app.name,
                ["Full_Admin"],
            )
        )
    now = emu.now()
    grant = new_grant(emu, app, machine, list(app.scopes), now)
    access = issue_access(emu, grant, now)
    minted = token_body(emu, grant, access, now)
    minted.pop("scope", None)
    emu.record(endpoint, 200, client_id=app.client_id)
    return Reply(200, minted)
