"""WebexAuth: an httpx2.Auth that sends a valid bearer token and survives one 401.

On a 401 it asks the manager for a token newer than the rejected one (another process may have
refreshed already; otherwise it refreshes once) and retries the request once. A second 401 is
returned to the caller: looping would hide a revoked grant.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx2

from .manager import TokenManager
from .reasons import Rejected


class WebexAuth(httpx2.Auth):
    """Bearer authentication for httpx2 clients from a TokenManager, with one retry on a 401."""

    def __init__(self, manager: TokenManager, min_valid: float = 60.0):
        self.manager = manager
        self.min_valid = min_valid

    def __repr__(self) -> str:
        return f"WebexAuth(profile={self.manager.name!r})"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.manager.access_token(self.min_valid)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = self.manager.refresh(Rejected(token, self.min_valid)).token
            request.headers["Authorization"] = f"Bearer {fresh.access_token}"
            yield request
