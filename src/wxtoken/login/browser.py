"""Starting the person's browser on the sign-in page, without handing it any secret.

A browser is a large program with helpers, crash reporters and extensions of its own; it must
not inherit WXTOKEN_PASSPHRASE or WXTOKEN_CLIENT_SECRET from wxtoken. `$BROWSER` (a list of
commands, as Python's `webbrowser` reads it) is run here with the secret variables removed from
its environment. Without `$BROWSER`, `webbrowser` picks the platform's opener and starts it with
this process's environment, so the secret variables are first removed from that environment
for good: by then the settings have been read and the store's key derived, so nothing in this
process needs them there any more, and nothing it starts later can inherit them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from typing import IO

from .._local import SECRET_VARIABLES, child_environment

NO_BROWSER = "wxtoken: no browser could be started; open the address above by hand\n"


def scrub_secret_environment() -> None:
    """Remove the secret-valued variables from this process's environment (and the C one)."""
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)


def browser_commands(value: str, url: str) -> list[list[str]]:
    """The command lines `$BROWSER` names for `url`, in order of preference.

    As in Python's `webbrowser`: entries are separated by the path separator, and `%s` stands
    for the address; an entry without `%s` gets the address as its last argument. A trailing
    `&` (run in the background) is dropped: every browser is started in the background here.
    """
    commands = []
    for entry in value.split(os.pathsep):
        try:
            words = shlex.split(entry)
        except ValueError:  # unbalanced quotes: not a command line anyone could mean
            continue
        if words and words[-1] == "&":
            words = words[:-1]
        if not words:
            continue
        if any("%s" in w for w in words):
            commands.append([w.replace("%s", url) for w in words])
        else:
            commands.append([*words, url])
    return commands


def open_browser(url: str, err: IO[str]) -> None:
    """Start the browser on `url` without blocking; say so on `err` if none starts."""
    scrub_secret_environment()
    for argv in browser_commands(os.environ.get("BROWSER", ""), url):
        try:
            proc = subprocess.Popen(
                argv,
                env=child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # stdout is what scripts capture (login --json)
                close_fds=True,
                start_new_session=True,  # Ctrl-C in the terminal is not meant for the browser
            )
        except OSError:
            continue
        threading.Thread(
            target=_report_failure, args=(proc, err), name="wxtoken-browser", daemon=True
        ).start()
        return
    threading.Thread(
        target=_platform_browser, args=(url, err), name="wxtoken-browser", daemon=True
    ).start()


def _report_failure(proc: subprocess.Popen[bytes], err: IO[str]) -> None:
    if proc.wait() != 0:
        err.write(f"wxtoken: the browser command exited with status {proc.returncode}\n")


def _platform_browser(url: str, err: IO[str]) -> None:
    """Python's own choice of browser (it may block until that browser exits)."""
    import webbrowser

    try:
        if not webbrowser.open(url):
            err.write(NO_BROWSER)
    except Exception:  # a broken browser setting must not end the login
        err.write(NO_BROWSER)
