"""The CLI in process: click's CliRunner with an App on the in-process emulator and its clock.

`Cli` mirrors `tests.conftest.Wx` (call it like the command, `add_profile`, `outputs`), so a
test reads the same whether it runs the installed command or the group in process. Signing in
goes through `exchange` with a code from the emulator's own consent rules (no browser).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.emulator_inproc import InProc, inproc_fixture
from wxtoken._local import Settings
from wxtoken.cli import App, cli
from wxtoken.emulator import EmulatorTransport


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    e: InProc
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    def app(self, env: dict[str, str] | None = None) -> App:
        settings = Settings(dict(self.env, **(env or {})))
        return App(settings, transport=EmulatorTransport(self.e.emu), clock=self.e.clock)

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        check: int | None = None,
    ) -> Result:
        result = CliRunner().invoke(cli, list(args), input=input, obj=self.app(env))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback a user would have seen: fail loudly
        out = Result(result.exit_code, result.stdout, result.stderr)
        self.outputs += [out.stdout, out.stderr]
        if check is not None:
            assert out.returncode == check, (args, out.returncode, out.stdout, out.stderr)
        return out

    def add_profile(
        self,
        name: str = "rec",
        *extra: str,
        secret: str | None = None,
        redirect_uri: str | None = None,
        scopes: str | None = None,
    ) -> None:
        scope_args = ["--scopes", scopes] if scopes else ["--preset", "verint-calling"]
        self(
            "profile",
            "add",
            name,
            "--client-id",
            self.e.client_id,
            "--redirect-uri",
            redirect_uri or self.e.redirect_uri,
            *scope_args,
            "--base-url",
            self.e.base_url,
            "--client-secret-stdin",
            *extra,
            input=(secret or self.e.client_secret) + "\n",
            check=0,
        )

    def code(self, scopes: tuple[str, ...] | None = None, redirect_uri: str | None = None) -> str:
        """A fresh authorization code, consented by the seeded admin."""
        from wxtoken.profile import SCOPE_PRESETS

        return self.e.emu.authorization_code(
            self.e.client_id,
            redirect_uri or self.e.redirect_uri,
            list(scopes or SCOPE_PRESETS["verint-calling"]),
        )

    def sign_in(self, name: str = "rec") -> Result:
        return self("exchange", "-p", name, "--code", "-", input=self.code() + "\n", check=0)


def cli_fixture(tmp_path: Path, **opts: Any) -> Iterator[Cli]:
    """Body of a fixture: `yield from cli_fixture(tmp_path)`."""
    for e in inproc_fixture(**opts):
        env = {
            "WXTOKEN_HOME": str(tmp_path / "store"),
            "WXTOKEN_KEY_FILE": str(tmp_path / "keys" / "store.key"),
        }
        yield Cli(e, env)
