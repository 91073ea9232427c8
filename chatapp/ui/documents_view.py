"""The Documents tab: document libraries, their indexing (off the GUI thread), and search.

A library may rank by meaning too: "Embedding model…" picks a static-embedding (model2vec)
folder; the folder is checked, and the passages embedded, by an index job off the GUI thread
(a wrong folder comes back as one line in the status); "Words only" goes back to BM25 alone.

Indexing and searching run in this view's own thread pool, each job with its own SQLite
connection (the store is not shared between threads); their signals are connected to methods
of this view, so results arrive in the GUI thread. The GUI thread itself only lists the
libraries (a few small queries). A newer search supersedes an older one by ticket.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ..documents.library import IndexProgress, LibraryStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1  # at most ten progress signals a second, however many files


def _tr(text: str) -> str:
    return QGuiApplication.translate("DocumentsView", text)


class IndexSignals(QObject):
    progress = Signal(int, int, str, str)  # done, total, path, status ("embedding": passages, else files)
    finished = Signal(str, object)  # library, IndexReport
    failed = Signal(str, str)  # library, message


class SearchSignals(QObject):
    done = Signal(int, object)  # ticket, hits
    failed = Signal(int, str)


class _IndexJob(QRunnable):
    """Add `paths` (if any), set the embedding model (`embedding_model`: a folder, '' for words
    only, None to leave it), then index."""

    def __init__(self, db_path: Path, name: str, paths: Sequence[Path], cancel: threading.Event,
                 signals: IndexSignals, embedding_model: Optional[str] = None) -> None:
        super().__init__()
        self.db_path, self.name, self.paths, self.cancel, self.signals = db_path, name, list(paths), cancel, signals
        self.embedding_model = embedding_model
        self._last = 0.0

    def _progress(self, progress: IndexProgress) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S or progress.done == progress.total:
            self._last = now
            self.signals.progress.emit(progress.done, progress.total, progress.path, progress.status)

    def run(self) -> None:
        try:
            with LibraryStore(self.db_path) as store:
                if self.paths:
                    store.add(self.name, self.paths)
                if self.embedding_model is not None:
                    store.set_embedding_model(self.name, self.embedding_model or None)
                report = store.index(self.name, progress=self._progress, cancel=self.cancel)
        except Exception as exc:  # shown in the view, never a traceback dialog
            log.debug("indexing %s failed", self.name, exc_info=True)
            self.signals.failed.emit(self.name, str(exc) or type(exc).__name__)
        else:
            self.signals.finished.emit(self.name, report)


class _SearchJob(QRunnable):
    def __init__(self, db_path: Path, ticket: int, name: str, query: str, signals: SearchSignals) -> None:
        super().__init__()
        self.db_path, self.ticket, self.name, self.query, self.signals = db_path, ticket, name, query, signals

    def run(self) -> None:
        try:
            with LibraryStore(self.db_path) as store:
                hits = store.search(self.name, self.query, limit=20)
        except Exception as exc:
            self.signals.failed.emit(self.ticket, str(exc) or type(exc).__name__)
        else:
            self.signals.done.emit(self.ticket, hits)


class DocumentsView(QWidget):
    """Libraries on the left; add folders or files, re-index, remove; progress with Cancel;
    a search box whose results show file, heading and a snippet."""

    def __init__(self, db_path: Path, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)  # one index job and one search at a time
        self.indexing: Optional[str] = None  # the library being indexed
        self._cancel = threading.Event()
        self._search_ticket = 0
        self.last_report = None
        self.index_signals = IndexSignals(self)
        self.index_signals.progress.connect(self._on_progress)
        self.index_signals.finished.connect(self._on_indexed)
        self.index_signals.failed.connect(self._on_index_failed)
        self.search_signals = SearchSignals(self)
        self.search_signals.done.connect(self._on_search_done)
        self.search_signals.failed.connect(self._on_search_failed)
        self._build()
        self.refresh()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _build(self) -> None:
        self.libraries = QListWidget()
        self.libraries.setAccessibleName(_tr("Libraries"))
        self.new_button = QPushButton(_tr("New library…"))
        self.add_folder_button = QPushButton(_tr("Add folder…"))
        self.add_files_button = QPushButton(_tr("Add files…"))
        self.reindex_button = QPushButton(_tr("Re-index"))
        self.remove_button = QPushButton(_tr("Remove"))
        self.embedding_button = QPushButton(_tr("Embedding model…"))
        self.embedding_button.setToolTip(_tr("Rank passages by meaning too, with a static-embedding model "
                                             "folder (model2vec: config.json, model.safetensors, tokenizer.json)"))
        self.words_only_button = QPushButton(_tr("Words only"))
        self.words_only_button.setToolTip(_tr("Rank passages by their words alone (no embedding model)"))
        self.ranking = QLabel("")
        self.ranking.setWordWrap(True)
        self._models: dict[str, str] = {}  # library -> its embedding model folder ('' none)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton(_tr("Cancel"))
        self.cancel_button.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText(_tr("Search the library (Enter)"))
        self.search_box.setAccessibleName(_tr("Search documents"))
        self.results = QTableWidget(0, 3)
        self.results.setHorizontalHeaderLabels([_tr("File"), _tr("Heading"), _tr("Passage")])
        self.results.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self.results.setEditTriggers(QTableWidget.NoEditTriggers)
        self.results.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(QLabel(_tr("Libraries")))
        left.addWidget(self.libraries, 1)
        for button in (self.new_button, self.add_folder_button, self.add_files_button, self.reindex_button,
                       self.remove_button, self.embedding_button, self.words_only_button):
            left.addWidget(button)
        left.addWidget(self.ranking)
        right = QVBoxLayout()
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        right.addLayout(bar)
        right.addWidget(self.status)
        right.addWidget(self.search_box)
        right.addWidget(self.results, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 3)

        self.new_button.clicked.connect(self._ask_new_library)
        self.add_folder_button.clicked.connect(self._ask_folder)
        self.add_files_button.clicked.connect(self._ask_files)
        self.reindex_button.clicked.connect(self.reindex)
        self.remove_button.clicked.connect(self.remove_selected)
        self.embedding_button.clicked.connect(self._ask_embedding_model)
        self.words_only_button.clicked.connect(self.use_words_only)
        self.cancel_button.clicked.connect(self.cancel_indexing)
        self.search_box.returnPressed.connect(self.search)
        self.libraries.currentItemChanged.connect(self._on_selection)

    # -- libraries ------------------------------------------------------------------------
    def refresh(self) -> None:
        selected = self.selected_library()
        with LibraryStore(self.db_path) as store:
            infos = store.list()
        self.libraries.clear()
        self._models = {info.name: info.embedding_model for info in infos}
        for info in infos:
            item = QListWidgetItem(_tr("{name} ({files} files)").format(name=info.name, files=info.files))
            item.setData(0x0100, info.name)  # Qt.UserRole
            tip = "\n".join(info.paths)
            if info.embedding_model:
                tip += "\n" + _tr("Embedding model: {folder} ({vectors} of {chunks} passages embedded)").format(
                    folder=info.embedding_model, vectors=info.vectors, chunks=info.chunks)
            item.setToolTip(tip)
            self.libraries.addItem(item)
            if info.name == selected:
                self.libraries.setCurrentItem(item)
        if self.libraries.currentItem() is None and self.libraries.count():
            self.libraries.setCurrentRow(0)
        self._update_state()

    def selected_library(self) -> Optional[str]:
        item = self.libraries.currentItem()
        return item.data(0x0100) if item is not None else None

    def add_to_library(self, name: str, paths: Sequence[Path]) -> None:
        """Create `name` (or add `paths` to it) and index it in the background."""
        self._start_index(name, paths)

    def reindex(self) -> None:
        name = self.selected_library()
        if name:
            self._start_index(name, [])

    def remove_selected(self) -> None:
        name = self.selected_library()
        if not name or name == self.indexing:
            return
        with LibraryStore(self.db_path) as store:
            store.remove(name)
        self.status.setText(_tr("Removed {name} (the files were not touched).").format(name=name))
        self.results.setRowCount(0)
        self.refresh()

    def set_embedding_model(self, name: str, folder: Optional[Path]) -> None:
        """Rank `name` by meaning too with the model in `folder` (None: words only), checked and
        embedded in the background."""
        self._start_index(name, [], embedding_model=str(folder) if folder is not None else "")

    def use_words_only(self) -> None:
        name = self.selected_library()
        if name and self._models.get(name):
            self.set_embedding_model(name, None)

    def _ask_embedding_model(self) -> None:
        name = self.selected_library()
        folder = QFileDialog.getExistingDirectory(
            self, _tr("A static-embedding model folder for {name}").format(name=name)) if name else ""
        if folder:
            self.set_embedding_model(name, Path(folder))

    def _ask_new_library(self) -> None:
        name, ok = QInputDialog.getText(self, _tr("New library"), _tr("Name:"))
        if ok and name.strip():
            folder = QFileDialog.getExistingDirectory(self, _tr("A folder for {name}").format(name=name))
            if folder:
                self.add_to_library(name.strip(), [Path(folder)])

    def _ask_folder(self) -> None:
        name = self.selected_library()
        folder = QFileDialog.getExistingDirectory(self, _tr("Add a folder")) if name else ""
        if folder:
            self.add_to_library(name, [Path(folder)])

    def _ask_files(self) -> None:
        name = self.selected_library()
        files, _ = QFileDialog.getOpenFileNames(self, _tr("Add files")) if name else ([], "")
        if files:
            self.add_to_library(name, [Path(f) for f in files])

    # -- indexing -------------------------------------------------------------------------
    def _start_index(self, name: str, paths: Sequence[Path], embedding_model: Optional[str] = None) -> None:
        if self.indexing is not None:
            self.status.setText(_tr("Wait for {name} to finish indexing.").format(name=self.indexing))
            return
        self.indexing = name
        self._cancel = threading.Event()
        self.progress.setRange(0, 0)  # busy until the walk has counted the files
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.status.setText(_tr("Indexing {name}…").format(name=name))
        self._update_state()
        self.pool.start(_IndexJob(self.db_path, name, paths, self._cancel, self.index_signals, embedding_model))

    def cancel_indexing(self) -> None:
        self._cancel.set()
        self.status.setText(_tr("Cancelling…"))

    @Slot(int, int, str, str)
    def _on_progress(self, done: int, total: int, path: str, status: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if status == "embedding":
            self.status.setText(_tr("Embedding passages: {done} of {total}").format(done=done, total=total))
        else:
            self.status.setText(_tr("Indexing {done} of {total}: {file}").format(done=done, total=total,
                                                                                 file=Path(path).name))

    @Slot(str, object)
    def _on_indexed(self, name: str, report) -> None:
        self.last_report = report
        self._index_ended()
        text = _tr("{name}: {summary}").format(name=name, summary=report.summary())
        if report.problems:
            text += "\n" + "\n".join(f"{path}: {problem}" for path, problem in report.problems[:5])
        text += "\n" + _tr("To ask about these documents, choose “{name}” beside the message box in the "
                           "Chat tab.").format(name=name)  # where a new user would not look
        self.status.setText(text)
        self.refresh()

    @Slot(str, str)
    def _on_index_failed(self, name: str, message: str) -> None:
        self._index_ended()
        self.status.setText(_tr("Cannot index {name}: {message}").format(name=name, message=message))
        self.refresh()

    def _index_ended(self) -> None:
        self.indexing = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._update_state()

    # -- search ---------------------------------------------------------------------------
    def search(self) -> None:
        name, query = self.selected_library(), self.search_box.text().strip()
        if not name or not query:
            return
        self._search_ticket += 1
        self.pool.start(_SearchJob(self.db_path, self._search_ticket, name, query, self.search_signals))

    @Slot(int, object)
    def _on_search_done(self, ticket: int, hits) -> None:
        if ticket != self._search_ticket:
            return
        self.results.setRowCount(len(hits))
        for row, hit in enumerate(hits):
            file_item = QTableWidgetItem(Path(hit.path).name)
            file_item.setToolTip(f"{hit.path} [{hit.start}:{hit.end}]")
            self.results.setItem(row, 0, file_item)
            self.results.setItem(row, 1, QTableWidgetItem(hit.heading))
            passage = QTableWidgetItem(hit.snippet)
            passage.setToolTip(hit.text)
            self.results.setItem(row, 2, passage)
        if not hits:
            self.status.setText(_tr("No passage matches."))

    @Slot(int, str)
    def _on_search_failed(self, ticket: int, message: str) -> None:
        if ticket == self._search_ticket:
            self.status.setText(_tr("Search failed: {message}").format(message=message))

    # -- state ----------------------------------------------------------------------------
    def _on_selection(self, *_args) -> None:
        self.results.setRowCount(0)
        self._update_state()

    def _update_state(self) -> None:
        name = self.selected_library()
        has = name is not None
        idle = self.indexing is None
        for button in (self.add_folder_button, self.add_files_button, self.reindex_button, self.remove_button,
                       self.embedding_button):
            button.setEnabled(has and idle)
        model = self._models.get(name, "") if has else ""
        self.words_only_button.setEnabled(bool(model) and idle)
        self.new_button.setEnabled(idle)
        if not has:
            self.ranking.setText("")
        elif model:
            self.ranking.setText(_tr("Ranked by words and meaning ({model})").format(model=Path(model).name))
            self.ranking.setToolTip(model)
        else:
            self.ranking.setText(_tr("Ranked by words"))
            self.ranking.setToolTip("")

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Cancel indexing and wait for the jobs (at most `timeout_s`)."""
        self._cancel.set()
        self.pool.waitForDone(int(timeout_s * 1000))
