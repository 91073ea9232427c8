"""Start-up concerns of a frozen (PyInstaller) app, kept in one place.

`prepare()` runs first in every entry point (`python -m chatapp`, the packaged binary's
packaging/entry.py). `self_command()` is how the app starts itself again as a child process,
e.g. `self_command() + ["train", ...]` for the training panel: a packaged binary has no Python
interpreter to call, only itself.
"""

from __future__ import annotations

import multiprocessing
import sys


def is_frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def prepare() -> None:
    """Call before anything else in an entry point; idempotent.

    freeze_support() lets a frozen child started by multiprocessing run its task instead of a
    second copy of the app (a no-op elsewhere). "spawn" everywhere: a forked child of a process
    that holds Qt, torch's thread pools or a worker thread can deadlock, and spawn is what
    Windows and macOS do anyway, so all platforms behave alike.
    """
    multiprocessing.freeze_support()
    if multiprocessing.get_start_method(allow_none=True) is None:
        multiprocessing.set_start_method("spawn")


def self_command() -> list[str]:
    """The argv prefix that runs this app again; append a subcommand and its options."""
    if is_frozen():
        return [sys.executable]
    return [sys.executable, "-m", "chatapp"]
