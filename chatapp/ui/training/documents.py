"""The Train tab's documents: a picker (folders, files, drag and drop) and an ingestion preview.

The preview reads the chosen documents on a pool thread (training/documents.py's Ingestor, one
document in memory at a time) and lists every file met: its size, about how many tokens it
gives, or why it was skipped. Token counts are estimated from the characters until a run's
dataset event gives the real total, which is then shared out between the files by characters.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QThreadPool, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ...training.protocol import DatasetEvent, FileEntry, IngestEvent
from .common import RED, human_bytes, table_defaults
from .jobs import Job, JobSignals

CHARS_PER_TOKEN = 4.0  # English prose with a byte-level BPE of ~50k entries, until a run counts them


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


class PreviewCancelled(Exception):
    pass


def preview_ingest(paths: list[Path], cancel: threading.Event) -> IngestEvent:
    """What reading `paths` for training would use and skip, as the run's ingest event says it."""
    from ...documents.reading import Ingestor

    def on_file(_report) -> None:
        if cancel.is_set():
            raise PreviewCancelled("superseded")

    ingestor = Ingestor(paths, on_file=on_file)
    for _document in ingestor.documents():
        pass
    return IngestEvent.from_dict({"kind": "documents", **ingestor.report.to_dict(include_files=True)})


def local_paths(mime) -> list[Path]:
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class DocumentsBox(QGroupBox):
    """Chosen paths and what reading them gives. `changed` whenever either changes."""

    changed = Signal()

    def __init__(self, pool: QThreadPool, parent: Optional[QWidget] = None) -> None:
        super().__init__(_tr("Documents"), parent)
        self.pool = pool
        self.preview_used: Optional[int] = None  # files usable; None while reading
        self.report: Optional[IngestEvent] = None
        self.tokens_per_char: Optional[float] = None  # measured by a run's dataset event
        self._ticket = 0
        self._cancel = threading.Event()
        self.signals = JobSignals()
        self.signals.done.connect(self._on_preview_done)
        self.signals.failed.connect(self._on_preview_failed)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.add_folder_button = QPushButton(_tr("Add folder…"))
        self.add_files_button = QPushButton(_tr("Add files…"))
        self.clear_button = QPushButton(_tr("Clear"))
        for button in (self.add_folder_button, self.add_files_button, self.clear_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.paths_list = QListWidget()
        self.paths_list.setAccessibleName(_tr("Chosen documents"))
        self.paths_list.setMaximumHeight(80)
        layout.addWidget(self.paths_list)
        hint = QLabel(_tr("Or drop files and folders here."))
        hint.setEnabled(False)
        layout.addWidget(hint)
        self.preview_label = QLabel(_tr("No documents chosen."))
        self.preview_label.setWordWrap(True)
        layout.addWidget(self.preview_label)
        self.files_table = QTableWidget(0, 4)
        self.files_table.setHorizontalHeaderLabels([_tr("File"), _tr("Size"), _tr("Tokens"), _tr("Used?")])
        self.files_table.setAccessibleName(_tr("Files read"))
        table_defaults(self.files_table)
        self.files_table.setMaximumHeight(180)
        self.files_table.setVisible(False)
        layout.addWidget(self.files_table)
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.add_files_button.clicked.connect(self.choose_files)
        self.clear_button.clicked.connect(self.clear_paths)

    # -- paths ----------------------------------------------------------------------------------
    @property
    def data_paths(self) -> list[Path]:
        return [Path(self.paths_list.item(i).text()) for i in range(self.paths_list.count())]

    def set_data_paths(self, paths) -> None:
        self.paths_list.clear()
        self.add_paths(paths)

    def add_paths(self, paths) -> None:
        known = set(self.data_paths)
        for path in (Path(p) for p in paths):
            if path not in known:
                known.add(path)
                self.paths_list.addItem(str(path))
        self.start_preview()

    @Slot()
    def clear_paths(self) -> None:
        self.paths_list.clear()
        self.start_preview()

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, _tr("Choose a folder of documents"))
        if folder:
            self.add_paths([folder])

    @Slot()
    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, _tr("Choose documents"), "",
                                                _tr("Documents (*.txt *.md *.rst *.html *.htm *.pdf *.docx);;"
                                                    "All files (*)"))
        if files:
            self.add_paths(files)

    def set_locked(self, locked: bool) -> None:
        for widget in (self.add_folder_button, self.add_files_button, self.clear_button):
            widget.setEnabled(not locked)

    # -- preview --------------------------------------------------------------------------------
    def start_preview(self) -> None:
        """Read the chosen documents off the GUI thread; a newer preview supersedes an older one."""
        self._cancel.set()
        self._ticket += 1
        self._cancel = threading.Event()
        self.files_table.setRowCount(0)
        self.files_table.setVisible(False)
        self.preview_used = None
        self.report = None
        paths = self.data_paths
        if not paths:
            self.preview_label.setText(_tr("No documents chosen."))
        else:
            self.preview_label.setText(_tr("Reading the documents…"))
            cancel = self._cancel
            self.pool.start(Job(self._ticket, lambda: preview_ingest(paths, cancel), self.signals))
        self.changed.emit()

    def stop(self) -> None:
        self._cancel.set()

    @Slot(int, object)
    def _on_preview_done(self, ticket: int, report: IngestEvent) -> None:
        if ticket == self._ticket:
            self.show_ingest_report(report)

    @Slot(int, str)
    def _on_preview_failed(self, ticket: int, message: str) -> None:
        if ticket == self._ticket:
            self.preview_used = 0
            self.preview_label.setStyleSheet(RED)
            self.preview_label.setText(_tr("Cannot read the documents: {message}").format(message=message))
            self.changed.emit()

    @Slot(object)
    def show_ingest_report(self, report: IngestEvent) -> None:
        self.report = report
        self.preview_used = report.files_used
        self._show()
        self.changed.emit()

    @Slot(object)
    def show_dataset(self, event: DatasetEvent) -> None:
        """A run counted the tokens: share the real total out between the files by characters."""
        if self.report is not None and self.report.chars and event.kind == "documents":
            # Targets are tokens minus one per block: close enough for a per-file share.
            self.tokens_per_char = (event.train_tokens + event.val_tokens) / self.report.chars
            self._show()

    def _tokens(self, entry: FileEntry) -> str:
        if entry.status != "used" or not entry.chars:
            return ""
        if self.tokens_per_char is not None:
            return f"{round(entry.chars * self.tokens_per_char):,}"
        return _tr("about {n:,}").format(n=round(entry.chars / CHARS_PER_TOKEN))

    def _show(self) -> None:
        report = self.report
        if report is None:
            return
        used, skipped = report.files_used, report.files_skipped
        tokens = sum(f.chars for f in report.files if f.status == "used")
        tokens = round(tokens * self.tokens_per_char) if self.tokens_per_char else round(tokens / CHARS_PER_TOKEN)
        text = _tr("{used} files used ({size} of text, about {tokens:,} tokens), {skipped} skipped.").format(
            used=used, size=human_bytes(report.text_bytes), tokens=tokens, skipped=skipped)
        if used == 0:
            text += "\n" + _tr("None of these files can be used for training.")
        self.preview_label.setStyleSheet(RED if used == 0 else "")
        self.preview_label.setText(text)
        files = sorted(report.files, key=lambda f: (f.status == "used", f.path))  # skipped ones first
        self.files_table.setRowCount(len(files))
        for row, entry in enumerate(files):
            used_text = _tr("yes") if entry.status == "used" else _tr("no: {reason}").format(
                reason=entry.reason or entry.kind)
            cells = (self._short_path(entry.path), human_bytes(entry.size), self._tokens(entry), used_text)
            for column, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setToolTip(entry.path if column == 0 else value)
                self.files_table.setItem(row, column, item)
        self.files_table.setVisible(bool(files))

    def _short_path(self, path: str) -> str:
        for root in self.data_paths:
            try:
                return str(Path(path).relative_to(root)) if root.is_dir() else Path(path).name
            except ValueError:
                continue
        return path
