"""A faithful local Webex identity service for tests, demos and offline development.

`wxtoken emulator` serves it over HTTP; `create_app(Emulator(...))` embeds it in any ASGI
server; `httpx2.Client(transport=EmulatorTransport(emu))` serves it in process, with a clock the
test controls (`ManualClock`). Both front ends share one dispatch, so they answer alike.

The package is split by job:

- model: the records (registry, codes, grants, tokens, policy, faults, replies)
- clock: the injected time source (SystemClock, ManualClock)
- state: `Emulator`, the records plus what several endpoints share (identifiers, the error
  envelope, the ledger, the seeded registry, revocation, faults)
- authorize: /v1/authorize and its consent page, and `Emulator.authorization_code` for tests
- grants: /v1/access_token (client authentication, code and refresh grants, token issuing)
- device, service_app: the device grant; minting service-app tokens
- resources: people/me, tokenExpiry, authorizations, messages, discovery
- causes: what ends or degrades a grant from outside its client (user changes, blocking, the
  token limit) and the cause the ledger names for each refusal
- control, faults: the /_emulator/ test API; what each injected fault answers
- persistence: the state file
- routes, router: the route table; the one dispatch (request in, rendered reply out)
- app, transport, server: Starlette adapter; httpx2 transport; running uvicorn

Revocation lives in state rather than control because Webex's own endpoints (authorization
delete, refresh-token reuse detection) revoke too; control only exposes it. Clients see no more
than Webex shows: every refused refresh token gets one answer, every dead access token one 401,
every missing scope or role one 403; only the ledger names the cause.
"""

from .app import create_app
from .authorize import AuthorizeRefused
from .clock import Clock, ManualClock, SystemClock
from .model import Fault, Integration, Policy, ServiceApp, User
from .state import Emulator
from .transport import EmulatorTransport

__all__ = [
    "AuthorizeRefused",
    "Clock",
    "Emulator",
    "EmulatorTransport",
    "Fault",
    "Integration",
    "ManualClock",
    "Policy",
    "ServiceApp",
    "SystemClock",
    "User",
    "create_app",
]
