"""The keeper's TokenManagers and HTTP clients: a bounded cache, shared connections, and retries
that give up when the keeper stops.

Managers are cached per profile in an LRU of `MANAGER_CACHE_SIZE`, admitted only once the
profile is found in the store, so the token socket cannot grow it with made-up names, and
forgotten when their profile is removed or changed. Evicting one is safe: single flight lives
in the store's per-profile locks, not in the manager. One WebexClient per base URL is shared by
every manager (one connection pool, one TLS context), with the HTTP deadline of the settings.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .._local import Settings
from ..errors import WebexUnavailable
from ..manager import TokenManager
from ..profile import Profile
from ..store import TokenStore

if TYPE_CHECKING:
    from ..client import WebexClient

# Profiles whose managers stay cached. A manager costs a few kilobytes and rebuilding one costs
# a profile read, so the bound is there to stop growth, not to save work: it covers the few
# profiles scripts ask the socket for, many times over.
MANAGER_CACHE_SIZE = 1024


class RefreshAbandoned(WebexUnavailable):
    """A refresh given up between retries because the keeper is stopping."""


class Managers:
    def __init__(
        self,
        store: TokenStore,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        stopping: threading.Event,
        client_for: Callable[[Profile], WebexClient] | None = None,
        size: int = MANAGER_CACHE_SIZE,
    ):
        if size < 1:
            raise ValueError("the manager cache holds at least one manager")
        self.store = store
        self.settings = settings
        self.size = size
        self._clock = clock
        self._stopping = stopping
        self._client_for = client_for or self._shared_client
        self._lru: OrderedDict[str, tuple[Profile, TokenManager]] = OrderedDict()
        # One client per base URL and network settings (proxy, CA file): shared by the profiles
        # that agree on both.
        self._clients: dict[tuple[str, tuple[str | None, str | None]], WebexClient] = {}
        self._lock = threading.Lock()

    @property
    def cached(self) -> tuple[str, ...]:
        """Cached profile names, least recently used first."""
        with self._lock:
            return tuple(self._lru)

    def get(self, name: str) -> TokenManager:
        """The manager of an existing profile (ProfileNotFound otherwise, and nothing cached)."""
        with self._lock:
            hit = self._lru.get(name)
            if hit is not None:
                self._lru.move_to_end(name)
                return hit[1]
        profile = self.store.get_profile(name)
        tm = TokenManager(
            name,
            store=self.store,
            settings=self.settings,
            clock=self._clock,
            client=self._client_for(profile),
        )
        with self._lock:
            hit = self._lru.get(name)
            if hit is not None:  # another thread built one meanwhile: use that one
                self._lru.move_to_end(name)
                return hit[1]
            self._lru[name] = (profile, tm)
            while len(self._lru) > self.size:
                self._lru.popitem(last=False)
        return tm

    def drop(self, name: str | None) -> None:
        """Forget a profile's manager (None: all), whose cached token another host replaced."""
        with self._lock:
            if name is None:
                self._lru.clear()
            else:
                self._lru.pop(name, None)

    def forget(self, current: Mapping[str, Profile]) -> None:
        """Drop managers whose profile is gone or changed (a new base URL needs a new client)."""
        with self._lock:
            stale = [n for n, (p, _) in self._lru.items() if current.get(n) != p]
            for name in stale:
                del self._lru[name]

    def _shared_client(self, profile: Profile) -> WebexClient:
        from ..client import WebexClient
        from ..network import network_key

        key = (profile.base_url, network_key(profile))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = WebexClient(
                    profile.base_url,
                    clock=self._clock,
                    deadline=self.settings.timeouts.http_deadline,
                    sleep=self._retry_sleep,
                    settings=self.settings,
                    profile=profile,
                )
                self._clients[key] = client
            return client

    def _retry_sleep(self, seconds: float) -> None:
        # Waiting between retries is where a stopping keeper lets go: the attempt in flight has
        # ended (at the latest at its deadline), and another would delay the stop by a whole
        # deadline more. The stored grant is untouched; a restarted keeper refreshes it.
        if self._stopping.wait(seconds):
            raise RefreshAbandoned(
                "refresh abandoned between retries because the keeper is stopping",
                fix="none needed: the stored grant is unchanged and is refreshed after a restart",
            )

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            self._lru.clear()
        for client in clients:
            client.close()
