"""The README's runnable examples run as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def runnable(name: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- runnable: {name} -->\n```python\n(.*?)```", text, re.S)
    assert m, f"no runnable block {name!r} in the README"
    return m.group(1)


def test_library_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-c", runnable("library")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "signed in as admin@example.com"
    assert lines[1].startswith("access token ends ") and lines[2] == "state ok"
