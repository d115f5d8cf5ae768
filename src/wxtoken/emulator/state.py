"""The emulator's state: one emulated Webex (registry, codes, grants, tokens, ledger) and its clock.

`Emulator` holds the records and the few operations several endpoints share: identifiers,
the error envelope, the ledger, the seeded registry, revocation and faults. The rules of each
endpoint live in the modules named after their job (authorize, grants, device, service_app,
resources, control); persistence and the test conveniences are reached through methods here so
that callers need only this class.
"""

from __future__ import annotations

import base64
import collections
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..device import DEVICE_HELPER_REDIRECT_URIS
from . import causes
from .authorize import ConsentRequest, authorization_code
from .clock import Clock, SystemClock
from .model import (
    DEFAULT_SCOPES,
    MSG_400,
    AccessToken,
    Code,
    DeviceCode,
    Fault,
    Grant,
    Integration,
    Policy,
    Reply,
    ServiceApp,
    User,
    b64_id,
)

BOT_LIFETIME = 100 * 365 * 86400  # bot tokens do not expire in any test's horizon
LEDGER_SIZE = 200_000


class Emulator:
    """All state of one emulated Webex.

    Front ends (the HTTP app, the in-process transport) hold `lock` around every request, so
    one emulator may serve many threads; direct calls from tests should do the same.
    """

    def __init__(
        self, policy: Policy | None = None, cluster: str = "PF84", clock: Clock | None = None
    ):
        self.policy = policy or Policy()
        self.policy.validate()
        self.cluster = cluster
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.lock = threading.RLock()
        self.integrations: dict[str, Integration] = {}
        self.users: dict[str, User] = {}  # by uuid
        self.service_apps: dict[str, ServiceApp] = {}  # by application id
        self.codes: dict[str, Code] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_index: dict[str, str] = {}  # refresh token → grant id
        self.retired_refresh: dict[str, tuple[str, float]] = {}  # old token → (grant, until)
        self.access: dict[str, AccessToken] = {}
        self.devices: dict[str, DeviceCode] = {}
        self.consents: dict[str, ConsentRequest] = {}  # pending consent pages, by txn id
        self.faults: list[Fault] = []
        self.messages: list[dict[str, Any]] = []
        self.ledger: collections.deque[dict[str, Any]] = collections.deque(maxlen=LEDGER_SIZE)
        self.ledger_total = 0
        self.consent_user: str | None = None  # uuid of the user "signed in" at the consent page
        self.persist_path: Path | None = None
        # Users and integrations as they were before the control API changed them: for reset.
        self.seeded_users: dict[str, User] = {}
        self.seeded_blocks: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (
            f"Emulator(integrations={len(self.integrations)}, users={len(self.users)}, "
            f"grants={len(self.grants)}, clock={self.clock!r})"
        )

    # --- time, identifiers, ledger ---------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def new_token(self, org_uuid: str) -> str:
        """Webex's shape: base64(uuid4 + 8 hex + "-" + 3 hex), then `_<cluster>_<org uuid>`."""
        raw = f"{uuid.uuid4()}{secrets.token_hex(4)}-{secrets.token_hex(2)[:3]}".encode()
        return f"{base64.b64encode(raw).decode().rstrip('=')}_{self.cluster}_{org_uuid}"

    def tracking_id(self, sent: str | None) -> str:
        if sent and self.policy.echo_tracking_id and len(sent) < 200 and sent.isprintable():
            return sent
        return f"ROUTER_{str(uuid.uuid4()).upper()}"

    def record(self, endpoint: str, status: int, **fields: Any) -> None:
        """One ledger entry per request: what reached "Webex", with fingerprints, never secrets."""
        self.ledger_total += 1
        entry = {"seq": self.ledger_total, "at": round(self.now(), 3), "endpoint": endpoint}
        entry["status"] = status
        entry.update({k: v for k, v in fields.items() if v is not None})
        self.ledger.append(entry)

    # --- the error envelope ----------------------------------------------------------------

    def error(
        self,
        status: int,
        message: str,
        description: str,
        tracking: str,
        oauth_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        body: dict[str, Any] = {
            "message": message,
            "errors": [{"description": description}],
            "trackingId": tracking,
        }
        if oauth_code and self.policy.rfc_error_keys:
            body["error"] = oauth_code
            body["error_description"] = description
        return Reply(status, body, dict(headers or {}))

    def oauth_error(self, code: str, detail: str, tracking: str, status: int = 400) -> Reply:
        return self.error(
            status, MSG_400 if status == 400 else detail, f"{code}: {detail}", tracking, code
        )

    # --- registry --------------------------------------------------------------------------

    def add_integration(self, integ: Integration) -> Integration:
        self.integrations[integ.client_id] = integ
        return integ

    def add_user(self, user: User) -> User:
        self.users[user.uuid] = user
        if self.consent_user is None:
            self.consent_user = user.uuid
        return user

    def add_service_app(self, app: ServiceApp) -> ServiceApp:
        self.service_apps[app.application_id] = app
        return app

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    def seed_default(self, redirect_uris: Sequence[str] | None = None) -> dict[str, Any]:
        """One org, one admin (the consent user), one plain user, one integration with every
        recorder scope (and the device grant's helper redirect URIs), one service app and one
        bot token."""
        org = str(uuid.uuid4())
        admin = self.add_user(
            User(str(uuid.uuid4()), "admin@example.com", org, "Avery Admin", ["Full_Admin"])
        )
        self.add_user(User(str(uuid.uuid4()), "user@example.com", org, "Uma User", []))
        integ = self.add_integration(
            Integration(
                client_id="C" + secrets.token_hex(32),
                client_secret=secrets.token_hex(32),
                redirect_uris=[
                    *(
                        redirect_uris
                        or (
                            "http://127.0.0.1:8765/callback",
                            "http://localhost:8765/callback",
                            "https://oauth.pstmn.io/v1/callback",
                        )
                    ),
                    # What an admin registers for the device grant (see device.py).
                    *DEVICE_HELPER_REDIRECT_URIS,
                ],
                scopes=list(DEFAULT_SCOPES),
                name="Call recorder (emulated)",
            )
        )
        app = self.add_service_app(
            ServiceApp(
                application_id=b64_id("APPLICATION", str(uuid.uuid4())),
                client_id="C" + secrets.token_hex(32),
                client_secret=secrets.token_hex(32),
                scopes=["spark-admin:recordings_read", "spark:kms"],
                authorized_org_uuids=[org],
            )
        )
        bot = self.issue_bot_token(org)
        return {"integration": integ, "user": admin, "service_app": app, "bot_token": bot}

    def issue_bot_token(self, org_uuid: str) -> str:
        value = self.new_token(org_uuid)
        now = self.now()
        self.access[value] = AccessToken(
            id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
            value=value,
            grant_id=None,
            client_id="bot",
            user_uuid=None,
            scopes=["spark:messages_write", "spark:people_read"],
            expires_at=now + BOT_LIFETIME,
            created=now,
            bot=True,
        )
        return value

    # --- revocation ------------------------------------------------------------------------

    def revoke_grant(self, grant_id: str, cause: str = causes.REVOKED) -> None:
        """End a grant and every access token issued under it (Control Hub's "Revoke Access");
        `cause` is what the ledger names when they are refused (the first cause stays)."""
        grant = self.grants.get(grant_id)
        if grant is None:
            return
        if not grant.revoked:
            grant.revoked, grant.revoked_by = True, cause
        self.refresh_index.pop(grant.refresh_token, None)
        for tok in self.access.values():
            if tok.grant_id == grant_id and not tok.revoked:
                tok.revoked, tok.revoked_by = True, cause

    def revoke_token(self, value: str) -> bool:
        """Revoke one refresh token (its whole grant) or one access token."""
        gid = self.refresh_index.get(value)
        if gid is not None:
            self.revoke_grant(gid)
            return True
        tok = self.access.get(value)
        if tok is not None:
            if not tok.revoked:
                tok.revoked, tok.revoked_by = True, causes.REVOKED
            return True
        return False

    def revoke_user(self, email: str, deactivate: bool = False) -> int:
        """A password change (or, with `deactivate`, a departure): every grant of the user
        ends; returns how many. `POST /_emulator/users` is the fuller form."""
        user = self.user_by_email(email)
        if user is None:
            return 0
        change = causes.UserChange(email, password_changed=not deactivate)
        if deactivate:
            change = causes.UserChange(email, active=False)
        return causes.change_user(self, user, change)

    # --- faults and reset ------------------------------------------------------------------

    def take_fault(self, endpoint: str) -> Fault | None:
        """The next armed fault for `endpoint` (or "*"), counting it down."""
        for f in self.faults:
            if f.endpoint in (endpoint, "*") and f.count > 0:
                f.count -= 1
                if f.count == 0:
                    self.faults.remove(f)
                return f
        return None

    def reset(self) -> None:
        """Forget every code, grant, token, device, fault, message and ledger entry, put the
        clock back and undo the control API's changes to users and integrations; the registry,
        the policy and bot tokens stay."""
        causes.restore_registry(self)
        self.codes.clear()
        self.grants.clear()
        self.refresh_index.clear()
        self.retired_refresh.clear()
        self.access = {k: v for k, v in self.access.items() if v.bot}
        self.devices.clear()
        self.consents.clear()
        self.faults.clear()
        self.messages.clear()
        self.ledger.clear()
        self.ledger_total = 0
        self.clock.reset()

    # --- persistence and test conveniences (implemented in their own modules) --------------
    # persistence builds Emulators, so it is imported when used rather than at module load.

    def snapshot(self) -> dict[str, Any]:
        from .persistence import snapshot

        return snapshot(self)

    @classmethod
    def restore(cls, data: Mapping[str, Any], clock: Clock | None = None) -> Emulator:
        """An emulator from `snapshot()` data; without `clock`, wall time plus the saved offset."""
        from .persistence import restore

        return restore(data, clock=clock)

    def save(self) -> None:
        """Write the state file, if one was given; called after every request that changes state."""
        if self.persist_path is not None:
            from .persistence import save

            save(self, self.persist_path)

    # Sign in without a browser (tests): see authorize.authorization_code.
    authorization_code = authorization_code
