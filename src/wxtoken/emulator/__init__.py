"""A faithful local Webex identity service for tests, demos and offline development.

`wxtoken emulator` serves it; `create_app(Emulator(...))` embeds it in any ASGI server.
"""

from .app import create_app
from .state import Emulator, Integration, Policy, ServiceApp, User

__all__ = ["Emulator", "Integration", "Policy", "ServiceApp", "User", "create_app"]
