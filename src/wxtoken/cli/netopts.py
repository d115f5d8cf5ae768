"""The network options of `profile add` and `profile set`: --proxy and --ca-file."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from .._local import ENV_PROXY_PASSWORD

F = TypeVar("F", bound=Callable[..., object])

proxy_option: Callable[[F], F] = click.option(
    "--proxy",
    default=None,
    metavar="URL",
    help="The HTTP proxy for this profile's Webex, instead of HTTPS_PROXY: http://[USER@]HOST:PORT "
    f"(never a password: that comes from ${ENV_PROXY_PASSWORD}); '' removes it.",
)
ca_file_option: Callable[[F], F] = click.option(
    "--ca-file",
    default=None,
    metavar="PEM",
    help="CA certificates to trust for this profile in addition to the OS trust store (a "
    "TLS-inspecting proxy's CA); '' removes it.",
)
