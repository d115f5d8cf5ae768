"""Pytest plugin with the fixtures most in-process emulator tests use; a test module registers
it with `pytest_plugins = ["tests.emulator_fixtures"]` (tests/conftest.py stays untouched)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.emulator_inproc import InProc, inproc_fixture


@pytest.fixture
def e() -> Iterator[InProc]:
    """An in-process emulator that approves consent at once, on a ManualClock."""
    yield from inproc_fixture(auto_approve=True)


@pytest.fixture
def http(e: InProc) -> httpx2.Client:
    """A client on `e`, closed with it."""
    return e.client(timeout=10)
