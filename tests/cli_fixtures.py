"""Pytest plugin with the in-process CLI fixtures; a test module registers it with
`pytest_plugins = ["tests.cli_fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_inproc import Cli, cli_fixture


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in process with a private home, on a fresh in-process emulator."""
    yield from cli_fixture(tmp_path)


@pytest.fixture
def signed_in(c: Cli) -> Cli:
    c.add_profile()
    c.sign_in()
    return c
