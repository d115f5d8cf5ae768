"""Service apps: `POST /v1/applications/{id}/token` mints a token pair for an authorized org.

The caller's bearer (an integration or another service app) must carry
`spark:applications_token`; the minted grant belongs to a machine account of the target org and
refreshes through the ordinary refresh grant with the service app's own credentials.

An admin authorizes an app per org (Control Hub > Management > Apps > Service Apps); the control
API does it here (`create`, `set_authorized`). Deauthorizing ends the app's grants in that org
(ledger cause `deauthorized`), so its refresh is refused and minting answers 403. Whether Webex
ends existing grants at deauthorization is not documented; ending them is the reading under
which wxtoken has most to do (mint again, and then report the refusal).
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from . import causes
from .grants import issue_access, new_grant, token_body
from .model import MSG_400, MSG_403, MSG_404, Reply, ServiceApp, User, b64_id
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
    org_uuid = org_uuid_of(emu, body["targetOrgId"])
    if org_uuid not in app.authorized_org_uuids:
        emu.record(endpoint, 403, error="not_authorized")
        return emu.error(403, MSG_403, "The service app is not authorized in that org", tracking)
    # One machine account per app and org, as Webex makes one when an admin authorizes it.
    email = f"machine-{app.client_id[:8]}@example"
    machine = next(
        (u for u in emu.users.values() if u.org_uuid == org_uuid and u.email == email),
        None,
    )
    if machine is None:
        machine = emu.add_user(User(str(uuid.uuid4()), email, org_uuid, app.name, ["Full_Admin"]))
    now = emu.now()
    grant = new_grant(emu, app, machine, list(app.scopes), now)
    access = issue_access(emu, grant, now)
    minted = token_body(emu, grant, access, now)
    minted.pop("scope", None)
    emu.record(endpoint, 200, client_id=app.client_id)
    return Reply(200, minted)


def org_uuid_of(emu: Emulator, org: str) -> str:
    """An org named by its REST id or its bare UUID, as the UUID."""
    return next((u.org_uuid for u in emu.users.values() if u.org_id == org), org)


def create(emu: Emulator, scopes: list[str], org_ids: list[str], name: str) -> ServiceApp:
    """A new service app (as a developer creates one), authorized in `org_ids`."""
    return emu.add_service_app(
        ServiceApp(
            application_id=b64_id("APPLICATION", str(uuid.uuid4())),
            client_id="C" + secrets.token_hex(32),
            client_secret=secrets.token_hex(32),
            scopes=list(scopes),
            authorized_org_uuids=[org_uuid_of(emu, o) for o in org_ids],
            name=name,
        )
    )


def set_authorized(emu: Emulator, app: ServiceApp, org: str, authorized: bool) -> int:
    """An admin of `org` authorizes or deauthorizes the app; deauthorizing ends its grants in
    that org. Returns the number of grants ended."""
    org_uuid = org_uuid_of(emu, org)
    if authorized:
        if org_uuid not in app.authorized_org_uuids:
            app.authorized_org_uuids.append(org_uuid)
        return 0
    if org_uuid in app.authorized_org_uuids:
        app.authorized_org_uuids.remove(org_uuid)
    ended = 0
    for grant in list(emu.grants.values()):
        user = emu.users.get(grant.user_uuid)
        in_org = user is not None and user.org_uuid == org_uuid
        if grant.client_id == app.client_id and in_org and not grant.revoked:
            emu.revoke_grant(grant.id, causes.DEAUTHORIZED)
            ended += 1
    return ended
