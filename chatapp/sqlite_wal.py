"""SQLite files shared by processes: switching a file to WAL mode safely when another process
opens it at the same moment (the conversation history and the document library both do)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def use_wal(conn: Any, timeout_s: float) -> str:
    """Put the database in WAL mode and return the mode it is in. Switching needs the file to
    itself for a moment, and SQLite can answer "database is locked" at once, without waiting out
    the connection's timeout, while another process opens the same new file (seen on a loaded
    machine in tests/hostile/test_second_instance.py): retried for up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pause = 0.01
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            contended = "locked" in str(exc) or "busy" in str(exc)
            if not contended or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
