"""The Train tab as a task: what does the model know? -> teach -> what does it know after?

`TaskBox` holds the quiz (questions from a file the user picks, or made from the documents
and shown for review), its table (base, base + documents, tuned, tuned + documents; before
and after teaching), the one Teach button with the estimate shown first, and the knowledge
examples of the last run to review. The quiz runs in child processes (`QuizRunner`); making
questions from the documents reads files on a pool thread, and so does indexing the documents
for the "+ documents" rows: once per document set, into a named library of the user's store
(documents.library.library_for_paths; only changed files are read on later runs), which the
quiz children open with `--docs NAME`. The panel supplies the model, the
documents and the adapter, starts the training and tells the box when a run has ended.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QThreadPool, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from .common import RED, table_defaults
from .examples import QUESTIONS, JsonlEditor
from .jobs import Job, JobSignals
from .quiz import (BASE, BASE_DOCS, ROWS, TUNED, TUNED_DOCS, QuizCommandBuilder, QuizJob, QuizRecord, QuizRunner,
                   build_quiz_command, score_text)

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingQuiz", text)


def make_questions(paths: list[Path], out: Path) -> tuple[str, int]:
    """Quiz questions made from the documents (knowledge.quiz_questions), written to `out`."""
    from ...training.knowledge import quiz_questions
    from ...training.prepare import read_sources
    from ...training.quiz import write_questions

    sources = read_sources(paths)
    if sources.kind != "documents":
        raise ValueError(_tr("questions can be made from documents, not from a conversation file"))
    questions = quiz_questions([(e.source, e.text or "") for e in sources.examples])
    if not questions:
        raise ValueError(_tr("no questions could be made from these documents (no names, dates or numbers found)"))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_questions(questions, out)
    return str(out), len(questions)


class TaskBox(QGroupBox):
    teach_requested = Signal()
    examples_saved = Signal(str)  # the edited examples file the next run trains on

    def __init__(self, pool: QThreadPool, questions_dir: Path, builder: Optional[QuizCommandBuilder] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(_tr("What does the model know?"), parent)
        self.pool = pool
        self.questions_dir = Path(questions_dir)
        self.builder = builder or build_quiz_command
        self.model = "default"
        self.data_paths: list[Path] = []
        self.questions: Optional[str] = None
        self.record = QuizRecord()
        self.record_folder: Optional[Path] = None  # the adapter the shown record belongs to
        self.runner: Optional[QuizRunner] = None
        self.examples_path: Optional[Path] = None
        self.editor: Optional[JsonlEditor] = None
        self._ticket = 0
        self.signals = JobSignals()
        self.signals.done.connect(self._on_questions_made)
        self.signals.failed.connect(self._on_questions_failed)
        self.library_path: Optional[Path] = None  # the library store (None: the user's)
        self.library: Optional[str] = None  # the library the last "+ documents" rows used
        self.indexing: Optional[threading.Event] = None  # set to cancel the indexing under way
        self._pending: Optional[tuple[Optional[str], tuple[str, ...]]] = None  # (adapter, rows) to ask once indexed
        self.index_signals = JobSignals()
        self.index_signals.done.connect(self._on_indexed)
        self.index_signals.failed.connect(self._on_index_failed)

        self.steps = QLabel(_tr("1. Add documents  2. Ask the quiz: what does the model know now?  "
                                "3. Teach  4. Ask again: what does it know after?"))
        self.steps.setWordWrap(True)
        self.questions_label = QLabel(_tr("Questions: none yet"))
        self.questions_label.setWordWrap(True)
        self.choose_button = QPushButton(_tr("Choose questions file…"))
        self.auto_button = QPushButton(_tr("Make questions from the documents"))
        self.review_button = QPushButton(_tr("Review questions…"))
        self.ask_button = QPushButton(_tr("Ask the quiz"))
        self.cancel_button = QPushButton(_tr("Cancel quiz"))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(_tr("Quiz not run"))
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(len(ROWS), 2)
        table_defaults(self.table)
        self.table.setAccessibleName(_tr("Quiz scores"))
        self.table.setHorizontalHeaderLabels([_tr("Before teaching"), _tr("After teaching")])
        self.table.verticalHeader().setVisible(True)
        self.table.setVerticalHeaderLabels([_tr("Base model"), _tr("Base model + documents"), _tr("Tuned"),
                                            _tr("Tuned + documents")])
        self.table.setMaximumHeight(150)
        self.teach_button = QPushButton(_tr("Teach"))
        self.teach_button.setToolTip(_tr("Train on the documents with the recommended settings "
                                         "(the first press shows how long it will take)"))
        self.teach_label = QLabel("")
        self.teach_label.setWordWrap(True)
        self.examples_button = QPushButton(_tr("Review training examples…"))
        self.examples_label = QLabel("")
        self.examples_label.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.steps)
        questions = QHBoxLayout()
        for button in (self.choose_button, self.auto_button, self.review_button):
            questions.addWidget(button)
        questions.addStretch(1)
        layout.addWidget(self.questions_label)
        layout.addLayout(questions)
        ask = QHBoxLayout()
        ask.addWidget(self.ask_button)
        ask.addWidget(self.cancel_button)
        ask.addWidget(self.progress, 1)
        layout.addLayout(ask)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        teach = QHBoxLayout()
        teach.addWidget(self.teach_button)
        teach.addWidget(self.examples_button)
        teach.addStretch(1)
        layout.addLayout(teach)
        layout.addWidget(self.teach_label)
        layout.addWidget(self.examples_label)

        self.choose_button.clicked.connect(self.choose_questions)
        self.auto_button.clicked.connect(self.make_questions)
        self.review_button.clicked.connect(self.review_questions)
        self.ask_button.clicked.connect(lambda: self.ask(self.adapter))
        self.cancel_button.clicked.connect(self.cancel)
        self.teach_button.clicked.connect(self.teach_requested)
        self.examples_button.clicked.connect(self.review_examples)
        self.adapter: Optional[str] = None  # the selected adapter: the "tuned" rows
        self.busy_elsewhere = False  # the panel trains or estimates: no quiz meanwhile
        self.teach_allowed = False  # the panel has documents and a model, and runs nothing
        self.update_state()

    # -- state ------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.runner is not None or self.indexing is not None

    def update_state(self) -> None:
        running = self.is_running()
        idle = not running and not self.busy_elsewhere
        self.ask_button.setEnabled(idle and bool(self.questions) and bool(self.model))
        self.cancel_button.setEnabled(running)
        self.teach_button.setEnabled(self.teach_allowed and not running)
        self.choose_button.setEnabled(not running)
        self.auto_button.setEnabled(not running and bool(self.data_paths))
        self.review_button.setEnabled(not running and bool(self.questions))
        self.examples_button.setEnabled(self.examples_path is not None and self.examples_path.is_file())

    def set_questions(self, path: Optional[str]) -> None:
        self.questions = path
        self.questions_label.setText(_tr("Questions: {file}").format(file=path) if path
                                     else _tr("Questions: none yet"))
        self.update_state()

    def show_record(self, record: QuizRecord, folder: Optional[Path] = None) -> None:
        self.record, self.record_folder = record, folder
        for row, name in enumerate(ROWS):
            for column, scores in enumerate((record.before, record.after)):
                self.table.setItem(row, column, QTableWidgetItem(score_text(scores.get(name))))
        if record.questions and not self.questions and Path(record.questions).is_file():
            self.set_questions(record.questions)

    def load_for_adapter(self, folder: Optional[str]) -> None:
        """Show the scores kept beside this adapter (after a restart too); an empty table when none."""
        self.adapter = folder
        if self.is_running():  # indexing for the quiz counts: its record is being filled
            return
        record = QuizRecord.load(Path(folder)) if folder else None
        if record is not None:
            self.show_record(record, Path(folder))
        elif folder:
            # a new adapter: what the base model knew stays, the tuned rows are not measured yet
            kept = QuizRecord(self.record.questions, self.record.docs,
                              {k: v for k, v in self.record.before.items() if k in (BASE, BASE_DOCS)})
            self.show_record(kept, Path(folder))

    # -- questions --------------------------------------------------------------------------------
    @Slot()
    def choose_questions(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, _tr("Quiz questions"), str(Path.home()),
                                              _tr("Questions (*.jsonl);;All files (*)"))
        if path:
            self.set_questions(path)

    @Slot()
    def make_questions(self) -> None:
        if not self.data_paths:
            return
        self._ticket += 1
        out = self.questions_dir / f"questions-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        paths = list(self.data_paths)
        self.set_status(_tr("Making questions from the documents…"))
        self.pool.start(Job(self._ticket, lambda: make_questions(paths, out), self.signals))

    @Slot(int, object)
    def _on_questions_made(self, ticket: int, result) -> None:
        if ticket != self._ticket:
            return
        path, n = result
        self.set_questions(path)
        self.set_status(_tr("{n} questions made from the documents: review them, then ask the quiz.").format(n=n))
        self.review_questions()

    @Slot(int, str)
    def _on_questions_failed(self, ticket: int, message: str) -> None:
        if ticket == self._ticket:
            self.set_status(_tr("No questions: {reason}").format(reason=message), failed=True)

    @Slot()
    def review_questions(self) -> None:
        if self.questions:
            self._open_editor(Path(self.questions), QUESTIONS)

    def _open_editor(self, path: Path, mode: str) -> JsonlEditor:
        """The editor for `path`; it reads the file on the pool and shows why when it cannot."""
        editor = JsonlEditor(path, mode, self, pool=self.pool)
        if self.editor is not None:
            self.editor.close()
        self.editor = editor
        editor.loaded.connect(self._on_editor_loaded)
        editor.show()
        return editor

    @Slot(bool)
    def _on_editor_loaded(self, ok: bool) -> None:
        if not ok and self.editor is not None:
            self.set_status(self.editor.info.text(), failed=True)

    # -- examples ---------------------------------------------------------------------------------
    def set_examples(self, path: Optional[str]) -> None:
        """The examples file of the last run (OUT/knowledge_examples.jsonl), to review before the next."""
        self.examples_path = Path(path) if path else None
        self.update_state()

    @Slot()
    def review_examples(self) -> None:
        if self.examples_path is None:
            return
        self._open_editor(self.examples_path, "examples").saved.connect(self._on_examples_saved)

    @Slot(str)
    def _on_examples_saved(self, path: str) -> None:
        self.examples_label.setText(_tr("The next run trains on the examples in {file}.").format(file=path))
        self.examples_saved.emit(path)

    # -- the quiz ---------------------------------------------------------------------------------
    def jobs(self, adapter: Optional[str], rows=ROWS, library: Optional[str] = None) -> list[QuizJob]:
        """The rows' quiz jobs; "+ documents" rows use `library` (a name) or else the paths."""
        docs = (library,) if library else tuple(str(p) for p in self.data_paths)
        made = {BASE: QuizJob(BASE, self.model, self.questions or ""),
                BASE_DOCS: QuizJob(BASE_DOCS, self.model, self.questions or "", docs=docs),
                TUNED: QuizJob(TUNED, self.model, self.questions or "", adapter=adapter),
                TUNED_DOCS: QuizJob(TUNED_DOCS, self.model, self.questions or "", adapter=adapter, docs=docs)}
        return [made[r] for r in rows if (adapter or r in (BASE, BASE_DOCS)) and (docs or r in (BASE, TUNED))]

    @Slot()
    def ask(self, adapter: Optional[str] = None, after_run: bool = False) -> None:
        """Run the quiz. Without an adapter: the base rows, "before". With one: its rows go in
        "after" and the record is kept beside it; after a run, the base rows are not asked again
        when the same questions already have them."""
        if self.is_running() or not self.questions or not self.model:
            return
        same = self.record.questions == self.questions
        if adapter is None:
            self.record = QuizRecord(self.questions, [str(p) for p in self.data_paths],
                                     before={}, after={})
            rows = ROWS
        else:
            before = self.record.before if same else {}
            self.record = QuizRecord(self.questions, [str(p) for p in self.data_paths], before=dict(before),
                                     after={k: v for k, v in before.items() if k in (BASE, BASE_DOCS)})
            rows = (TUNED, TUNED_DOCS) if after_run and same and self.record.after else ROWS
        self.record_folder = Path(adapter) if adapter else None
        self.phase = "after" if adapter else "before"
        self.show_record(self.record, self.record_folder)
        if self.data_paths and any(r in (BASE_DOCS, TUNED_DOCS) for r in rows):
            self._index_then_ask(adapter, tuple(rows))
        else:
            self._start(self.jobs(adapter, rows))

    def _index_then_ask(self, adapter: Optional[str], rows: tuple[str, ...]) -> None:
        from ...documents.library import library_for_paths

        self._ticket += 1
        self.indexing, self._pending = threading.Event(), (adapter, rows)
        paths, store, cancel = list(self.data_paths), self.library_path, self.indexing
        self.progress.setRange(0, 0)
        self.progress.setFormat(_tr("Indexing the documents…"))
        self.set_status(_tr("Indexing the documents for the \"+ documents\" rows (only changed files are read)…"))
        self.pool.start(Job(self._ticket, lambda: library_for_paths(paths, store, cancel=cancel), self.index_signals))
        self.update_state()

    @Slot(int, object)
    def _on_indexed(self, ticket: int, result) -> None:
        if ticket != self._ticket or self.indexing is None:
            return
        cancelled, self.indexing = self.indexing.is_set(), None
        name, report = result
        if cancelled or report.cancelled:
            self._pending = None
            self.progress.setRange(0, 1)
            self.progress.setFormat(_tr("Quiz cancelled"))
            self.set_status(_tr("Quiz cancelled."))
            self.update_state()
            return
        adapter, rows = self._pending or (None, ROWS)
        self._pending = None
        self.library = name
        self._start(self.jobs(adapter, rows, library=name))

    @Slot(int, str)
    def _on_index_failed(self, ticket: int, message: str) -> None:
        if ticket != self._ticket:
            return
        self.indexing = self._pending = None
        self.progress.setRange(0, 1)
        self.progress.setFormat(_tr("Quiz failed"))
        self.set_status(_tr("The documents could not be indexed: {reason}").format(reason=message), failed=True)
        self.update_state()

    def _start(self, jobs: list[QuizJob]) -> None:
        self.runner = QuizRunner(jobs, self.builder, self)
        self.runner.progress.connect(self._on_progress)
        self.runner.row_done.connect(self._on_row_done)
        self.runner.finished.connect(self._on_finished)
        self.rows_total, self.rows_done = len(jobs), 0
        self.progress.setRange(0, 0)
        self.progress.setFormat(_tr("Loading the model…"))
        self.set_status(_tr("Asking the quiz ({n} runs)…").format(n=len(jobs)))
        self.runner.start()
        self.update_state()

    @Slot(object, int, int)
    def _on_progress(self, job: QuizJob, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(_tr("{row}: question {done} of {total}").format(
            row=self.table.verticalHeaderItem(ROWS.index(job.row)).text(), done=done, total=total))

    @Slot(object, object)
    def _on_row_done(self, job: QuizJob, summary: dict) -> None:
        scores = self.record.after if self.phase == "after" else self.record.before
        scores[job.row] = [int(summary["score"]), int(summary["total"])]
        if self.phase == "before" and job.row in (BASE, BASE_DOCS):
            self.record.after.pop(job.row, None)
        self.rows_done += 1
        self.show_record(self.record, self.record_folder)

    @Slot(str, str)
    def _on_finished(self, status: str, error: str) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.deleteLater()
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if status == "completed" else 0)
        self.progress.setFormat({"completed": _tr("Quiz done"), "cancelled": _tr("Quiz cancelled")}.get(
            status, _tr("Quiz failed")))
        if status == "failed":
            self.set_status(_tr("The quiz failed: {reason}").format(reason=error), failed=True)
        elif status == "cancelled":
            self.set_status(_tr("Quiz cancelled."))
        else:
            self.set_status(_tr("Quiz done: {n} runs.").format(n=self.rows_done))
        if self.record_folder is not None and (self.record.after or self.record.before):
            try:
                self.record.save(self.record_folder)
            except OSError as exc:
                self.set_status(_tr("The scores could not be kept: {reason}").format(reason=str(exc)), failed=True)
        self.update_state()

    @Slot()
    def cancel(self) -> None:
        if self.indexing is not None:
            self.indexing.set()
        if self.runner is not None:
            self.runner.cancel()

    def shutdown(self) -> None:
        if self.indexing is not None:
            self.indexing.set()
        if self.runner is not None:
            self.runner.kill()
        if self.editor is not None:
            self.editor.close()

    def set_status(self, text: str, failed: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(RED if failed else "")
