"""Entry point of the `wxtoken` command: the `token` hot path first, then the full CLI.

Kept separate from cli.py so that answering `wxtoken token` never imports click.
"""

from __future__ import annotations

import sys


def main() -> None:
    from ._fastpath import run

    code = run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from .cli import main as full

    full()


if __name__ == "__main__":
    main()
