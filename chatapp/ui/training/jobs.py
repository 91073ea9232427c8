"""Work the Train tab does off the GUI thread: reading documents, scanning the adapters folder.

A `Job` runs one function on a QThreadPool thread and reports through `JobSignals`, whose
signals are connected to methods of widgets living in the GUI thread, so results arrive there
(queued). Each job carries a ticket: a newer request supersedes an older one, whose late
answer is dropped by the receiver.
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, Signal

log = logging.getLogger(__name__)


class JobSignals(QObject):
    """Emitted from a pool thread; connect them to widget methods, so they are delivered in the GUI thread."""

    done = Signal(int, object)  # ticket, result
    failed = Signal(int, str)  # ticket, message


class Job(QRunnable):
    def __init__(self, ticket: int, work: Callable[[], object], signals: JobSignals) -> None:
        super().__init__()
        self.ticket, self.work, self.signals = ticket, work, signals

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never a traceback dialog
            log.debug("background job %d failed", self.ticket, exc_info=True)
            self.signals.failed.emit(self.ticket, str(exc) or type(exc).__name__)
        else:
            self.signals.done.emit(self.ticket, result)
