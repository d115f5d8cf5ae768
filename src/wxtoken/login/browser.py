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
import sys
import threading
from collections.abc import Callable, Mapping

from .._local import SECRET_VARIABLES, child_environment

# Told why no browser came up (one short phrase); the caller offers the alternatives.
OnFailure = Callable[[str], None]
NO_DISPLAY = "no DISPLAY or WAYLAND_DISPLAY: this looks like a server without a desktop"


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


def display_missing(environ: Mapping[str, str] | None = None, platform: str = "") -> bool:
    """On Linux and the BSDs a graphical browser needs an X11 or Wayland display; without one,
    Python's `webbrowser` would fall back to a text browser that takes over this terminal."""
    env = os.environ if environ is None else environ
    unix = (platform or sys.platform).startswith(("linux", "freebsd", "openbsd", "netbsd"))
    return unix and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY")


def open_browser(url: str, on_failure: OnFailure) -> None:
    """Start the browser on `url` without blocking; call `on_failure` (once, perhaps from
    another thread) if none starts or the one started fails."""
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
            target=_report_failure, args=(proc, on_failure), name="wxtoken-browser", daemon=True
        ).start()
        return
    if os.environ.get("BROWSER"):
        on_failure("no command in $BROWSER could be started")
        return
    if display_missing():
        on_failure(NO_DISPLAY)
        return
    threading.Thread(
        target=_platform_browser, args=(url, on_failure), name="wxtoken-browser", daemon=True
    ).start()


def _report_failure(proc: subprocess.Popen[bytes], on_failure: OnFailure) -> None:
    if proc.wait() != 0:
        on_failure(f"the $BROWSER command exited with status {proc.returncode}")


# Python's own choice of browser, made in a child process: `webbrowser` starts the browser
# with this process's environment, which still holds what the store needs (the shared store's
# URL, PGPASSWORD); the child gets the environment every program wxtoken starts gets.
_PLATFORM_OPEN = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1]) else 3)"
NO_PLATFORM_BROWSER = 3


def _platform_browser(url: str, on_failure: OnFailure) -> None:
    """Python's own choice of browser (it may block until that browser exits)."""
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _PLATFORM_OPEN, url],
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    except OSError:
        on_failure("the platform's browser could not be started")
        return
    code = proc.wait()
    if code == NO_PLATFORM_BROWSER:
        on_failure("Python's webbrowser module found no browser")
    elif code != 0:  # a broken browser setting must not end the login
        on_failure("the platform's browser could not be started")
