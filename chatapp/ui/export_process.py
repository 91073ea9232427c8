"""Export an adapter merged into its base model, as `chatapp export` in a child process.

Merging reads the whole base model and writes it again (hundreds of MB for the default model,
gigabytes for larger ones), so it runs outside the window's process, like training: QProcess,
asynchronous in the GUI thread. The result is a Hugging Face folder that this app (Open
folder…, or the adapters list) and transformers both open.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal, Slot
from PySide6.QtGui import QGuiApplication

from ..frozen import self_command

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("ExportProcess", text)


def free_folder(wanted: Path) -> Path:
    """`wanted`, or `wanted-2`, `wanted-3`... whichever does not exist yet."""
    candidate, n = wanted, 1
    while candidate.exists():
        n += 1
        candidate = wanted.with_name(f"{wanted.name}-{n}")
    return candidate


def check_export_folder(out: Path) -> str:
    """Why `out` cannot take an export ("" when it can): it must be new, or an empty folder."""
    if out.exists() and not out.is_dir():
        return _tr("a file of that name exists")
    if out.is_dir() and any(out.iterdir()):
        return _tr("the folder is not empty; choose a new folder name")
    if not out.parent.is_dir():
        return _tr("its parent folder {parent} does not exist").format(parent=out.parent)
    return ""


def build_export_command(base_model: str, adapter: str, out: Path,
                         prefix: Optional[Sequence[str]] = None) -> list[str]:
    return list(prefix if prefix is not None else self_command()) + [
        "export", "--model", base_model, "--adapter", adapter, "--out", str(out)]


class ExportProcess(QObject):
    """One `chatapp export` run; `finished(ok, message)` once it ends, whatever happened."""

    finished = Signal(bool, str)

    def __init__(self, command: list[str], out: Path, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.command = command
        self.out = out
        self._done = False
        self.process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONIOENCODING", "utf-8")
        self.process.setProcessEnvironment(env)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)

    def start(self) -> None:
        log.info("exporting: %s", " ".join(self.command))
        self.process.start(self.command[0], self.command[1:])

    def is_running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def kill(self) -> None:
        if self.is_running():
            self.process.kill()
            self.process.waitForFinished(5000)

    def _last_error_line(self) -> str:
        lines = [line.strip() for line in bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
                 .splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        return (errors or lines or [""])[-1].removeprefix("error:").strip()

    def _finish(self, ok: bool, message: str) -> None:
        if not self._done:
            self._done = True
            self.finished.emit(ok, message)

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if exit_status == QProcess.NormalExit and exit_code == 0:
            self._finish(True, str(self.out))
            return
        reason = self._last_error_line() or _tr("the export process exited with code {code}").format(code=exit_code)
        self._finish(False, reason)

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.FailedToStart:
            self._finish(False, _tr("could not start {program}").format(program=self.command[0]))
