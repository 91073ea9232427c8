"""The Train tab's adapters and trained models: the list, chat/compare/open, and export merged.

The list comes from scanning the adapters folder (training/outputs.py) on a pool thread: it
reads adapter metadata through modules that import torch. Export runs `chatapp export` in a
child process (ui/export_process.py) into the folder the user names.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ...training.outputs import TrainedOutput, scan_adapters
from ..export_process import ExportProcess, build_export_command, check_export_folder, free_folder
from .common import table_defaults
from .jobs import Job, JobSignals

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


class AdaptersBox(QGroupBox):
    use_adapter = Signal(str)  # adapter folder: chat with it
    adapter_off = Signal()
    use_model = Signal(str)  # a fully trained model folder: load it as the chat model
    compare = Signal(object)  # TrainedOutput: open the comparison with it
    status = Signal(str, bool)  # text, failed: for the panel's status line

    def __init__(self, adapters_dir: Path, pool: QThreadPool, parent: Optional[QWidget] = None) -> None:
        super().__init__(_tr("Adapters and trained models"), parent)
        self.adapters_dir = adapters_dir
        self.pool = pool
        self.adapters: list[TrainedOutput] = []
        self.active_adapter = ""
        self.highlight: Optional[Path] = None  # a run's output folder to select once listed
        self.exporter: Optional[ExportProcess] = None
        self.export_prefix: Optional[list[str]] = None  # None: this app (tests run it another way)
        self.choose_export_folder: Callable[[Path], Optional[Path]] = self._ask_export_folder
        self._ticket = 0
        self.signals = JobSignals()
        self.signals.done.connect(self._on_scan_done)
        self.signals.failed.connect(self._on_scan_failed)
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels([_tr("Name"), _tr("Base model"), _tr("Date"), _tr("Val. perplexity")])
        self.table.setAccessibleName(_tr("Adapters"))
        table_defaults(self.table)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.Stretch)  # the name takes the room, rows or not
        header.setMinimumSectionSize(90)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.chat_button = QPushButton(_tr("Chat with this adapter"))
        self.off_button = QPushButton(_tr("Switch adapter off"))
        self.compare_button = QPushButton(_tr("Compare"))
        self.open_folder_button = QPushButton(_tr("Open folder"))
        self.export_button = QPushButton(_tr("Export merged…"))
        self.export_button.setToolTip(_tr("Write the adapter merged into its base model as a model folder "
                                          "that this app and transformers open"))
        self.refresh_button = QPushButton(_tr("Refresh"))
        for button in (self.chat_button, self.off_button, self.compare_button, self.open_folder_button,
                       self.export_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)
        self.table.itemSelectionChanged.connect(self.update_state)
        self.table.itemDoubleClicked.connect(self.chat_with_selected)
        self.chat_button.clicked.connect(self.chat_with_selected)
        self.off_button.clicked.connect(self.adapter_off)
        self.compare_button.clicked.connect(self.open_compare)
        self.open_folder_button.clicked.connect(self.open_selected_folder)
        self.export_button.clicked.connect(self.export_selected)
        self.refresh_button.clicked.connect(self.refresh)

    # -- the list -------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        self._ticket += 1
        root = self.adapters_dir
        self.pool.start(Job(self._ticket, lambda: scan_adapters(root), self.signals))

    @Slot(int, object)
    def _on_scan_done(self, ticket: int, rows: list) -> None:
        if ticket == self._ticket:
            self.adapters = rows
            self.fill()

    @Slot(int, str)
    def _on_scan_failed(self, ticket: int, message: str) -> None:
        log.warning("scanning adapters failed: %s", message)

    def set_active_adapter(self, path: str) -> None:
        self.active_adapter = str(path)
        self.fill()

    def fill(self) -> None:
        selected = (self.selected() or TrainedOutput("", "", "", 0)).path
        self.table.setRowCount(len(self.adapters))
        for row, entry in enumerate(self.adapters):
            name = entry.name + (_tr(" (in use)") if entry.path == self.active_adapter else "")
            if entry.kind == "model":
                name += _tr(" (full model)")
            if entry.error:
                name += _tr(" (damaged)")
            base = entry.base_model
            base = _tr("the default model") if base in ("default", "") and entry.kind == "adapter" and not \
                entry.error else (Path(base).name if base else "")
            cells = (name, base, time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.date)),
                     f"{entry.val_ppl:.2f}" if entry.val_ppl is not None else "—")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(entry.error or entry.path)
                self.table.setItem(row, column, item)
            if entry.path == selected or (self.highlight is not None
                                          and Path(entry.path).is_relative_to(self.highlight)):
                self.table.selectRow(row)
        self.update_state()

    def selected(self) -> Optional[TrainedOutput]:
        model = self.table.selectionModel()
        rows = model.selectedRows() if model is not None else []
        if not rows or rows[0].row() >= len(self.adapters):
            return None
        return self.adapters[rows[0].row()]

    @Slot()
    def update_state(self) -> None:
        row = self.selected()
        usable = row is not None and not row.error
        self.chat_button.setEnabled(usable)
        self.chat_button.setText(_tr("Chat with this model") if row and row.kind == "model"
                                 else _tr("Chat with this adapter"))
        self.off_button.setEnabled(bool(self.active_adapter))
        self.compare_button.setEnabled(usable and row.kind == "adapter")
        self.open_folder_button.setEnabled(row is not None)
        self.export_button.setEnabled(usable and row.kind == "adapter" and self.exporter is None)

    @Slot()
    def chat_with_selected(self) -> None:
        entry = self.selected()
        if entry is None or entry.error:
            return
        if entry.kind == "model":
            self.use_model.emit(entry.path)
        else:
            self.use_adapter.emit(entry.path)

    @Slot()
    def open_compare(self) -> None:
        entry = self.selected()
        if entry is not None and entry.kind == "adapter" and not entry.error:
            self.compare.emit(entry)

    @Slot()
    def open_selected_folder(self) -> None:
        entry = self.selected()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(entry.path))

    # -- export ---------------------------------------------------------------------------------
    def _ask_export_folder(self, suggested: Path) -> Optional[Path]:
        """A save dialog: the user names the new folder (or picks an empty one) the model goes into."""
        chosen, _ = QFileDialog.getSaveFileName(self, _tr("Export the merged model as a new folder"),
                                                str(suggested), "", "",
                                                QFileDialog.ShowDirsOnly | QFileDialog.DontConfirmOverwrite)
        return Path(chosen) if chosen else None

    @Slot()
    def export_selected(self) -> None:
        """Merge the selected adapter into its base model and write a model folder (a child process)."""
        entry = self.selected()
        if entry is None or entry.kind != "adapter" or entry.error or self.exporter is not None:
            return
        out = self.choose_export_folder(free_folder(self.adapters_dir / f"{entry.name}-merged"))
        if out is None:
            return
        problem = check_export_folder(out)
        if problem:
            self.status.emit(_tr("Cannot export to {out}: {problem}").format(out=out, problem=problem), True)
            return
        command = build_export_command(entry.base_model or "default", entry.path, out, self.export_prefix)
        self.exporter = ExportProcess(command, out, self)
        self.exporter.finished.connect(self._on_exported)
        self.status.emit(_tr("Exporting {name} merged into its base model to {out}…").format(
            name=entry.name, out=out), False)
        self.exporter.start()
        self.update_state()

    @Slot(bool, str)
    def _on_exported(self, ok: bool, message: str) -> None:
        exporter, self.exporter = self.exporter, None
        if exporter is not None:
            exporter.deleteLater()
        if ok:
            self.status.emit(_tr("Exported to {out}. Open it as a model with Open folder… in the chat's "
                                 "model panel.").format(out=message), False)
            self.refresh()  # listed here when written under the adapters folder
        else:
            self.status.emit(_tr("Export failed: {reason}").format(reason=message), True)
        self.update_state()

    def shutdown(self) -> None:
        if self.exporter is not None:
            self.exporter.kill()  # a half-written export folder is no use; the adapter is untouched
