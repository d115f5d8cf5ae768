"""The CLI's one context object: settings, the store and managers, opened once per command.

Commands receive it through `pass_app`. Tests build their own (`App(settings, transport=...)`)
and hand it to click's CliRunner as `obj`, so a command runs in-process against the emulator's
transport with exactly the code a user runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from .._local import Settings
from ..manager import TokenManager
from ..store import TokenStore, open_store
from . import render

if TYPE_CHECKING:
    import httpx2


class App:
    """What every command needs, created lazily so `--help` and bad arguments cost nothing."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self.transport = transport
        self.clock = clock
        self._store: TokenStore | None = None
        self._managers: list[TokenManager] = []
        # The profile the command works on, once known: error fixes name it.
        self.profile_name: str | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()  # a bad WXTOKEN_* value: SettingError, exit 2
        return self._settings

    def store(self) -> TokenStore:
        if self._store is None:
            prompt = _terminal_prompt if sys.stdin.isatty() else None
            self._store = open_store(self.settings, prompt=prompt, clock=self.clock)
        return self._store

    def manager(self, profile: str | None) -> TokenManager:
        tm = TokenManager(
            profile,
            store=self.store(),
            settings=self.settings,
            transport=self.transport,
            clock=self.clock,
        )
        self._managers.append(tm)
        self.profile_name = tm.name
        return tm

    def close(self) -> None:
        for tm in self._managers:
            if tm.secret_fell_back:  # said whichever command sent the request, even one failing
                click.echo(render.older_secret_warning(tm.name), err=True)
            tm.close()
        self._managers.clear()


def _terminal_prompt(label: str, confirm: bool) -> str:
    """A hidden prompt on the terminal (stderr); `confirm` asks a new passphrase twice.

    The store decides what to ask and says why in `label` (see store/keys.py); an empty
    answer, or two that differ, is asked again by click.
    """
    again = "Repeat the new passphrase" if confirm else False
    value: str = click.prompt(label, hide_input=True, confirmation_prompt=again, err=True)
    return value


pass_app = click.make_pass_decorator(App, ensure=True)
