"""Entry point of the packaged app (PyInstaller runs this file as __main__).

`chatapp [SUBCOMMAND]` exactly as from source, plus one packaging aid:

    chatapp --startup-probe    open the window (throw-away profile, no model), wait until it is
                               shown, print {"window_s": <seconds since the process started>, ...}
                               as one JSON line and exit. Used by check_bundle.sh to measure cold
                               start; it also runs from source: `python packaging/entry.py --startup-probe`.
"""

from __future__ import annotations

import sys
import time

_ENTERED = time.perf_counter()


def _seconds_since_process_start() -> tuple[float, str]:
    """Linux: from the kernel's start time of this process (10 ms ticks), so the bootloader and
    interpreter start-up count too. Elsewhere: from when this file began to run."""
    try:
        import os
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of proc(5), counted after "pid (comm)"
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        return now - started_ticks / os.sysconf("SC_CLK_TCK"), "process"
    except (OSError, AttributeError, ValueError, IndexError):
        return time.perf_counter() - _ENTERED, "entry"


def _startup_probe(timeout_s: float = 30.0) -> int:
    import json
    import tempfile
    from pathlib import Path

    imports_s, _ = _seconds_since_process_start()
    from PySide6.QtCore import QCoreApplication
    from chatapp.ui.app import create_window

    with tempfile.TemporaryDirectory(prefix="chatapp-probe-") as profile:
        app, window = create_window(autoload=False, profile_dir=Path(profile))
        window.show()
        deadline = time.perf_counter() + timeout_s
        while not (window.windowHandle() and window.windowHandle().isExposed()):
            QCoreApplication.processEvents()
            if time.perf_counter() > deadline:
                print(json.dumps({"ok": False, "error": "the window was not shown in time"}))
                return 1
        QCoreApplication.processEvents()
        shown_s, since = _seconds_since_process_start()
        window.close()
        window.store.close()
    print(json.dumps({"ok": True, "window_s": round(shown_s, 3), "before_imports_s": round(imports_s, 3),
                      "since": since, "frozen": bool(getattr(sys, "frozen", False)),
                      "platform": app.platformName()}))
    return 0


def main() -> int:
    from chatapp.frozen import prepare
    prepare()
    if sys.argv[1:2] == ["--startup-probe"]:
        return _startup_probe()
    from chatapp.cli import main as cli_main
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
