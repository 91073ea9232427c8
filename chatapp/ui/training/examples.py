"""Preview, edit and delete rows of a JSONL before training on it: the knowledge examples
(OUT/knowledge_examples.jsonl, reused with `--examples FILE`) and the quiz's questions.

`JsonlEditor` is a dialog with a table: one row per line of the file. For examples, a question
and answer pair (`{"messages": [user, assistant]}`) shows both, editable; plain text
(`{"text": ...}`) shows its text, editable; longer conversations can be deleted but not
edited here. For questions, the question and its accepted answers (separated by "|").
Saving checks every row the way training or the quiz reads it, and writes the file atomically.
Reading, checking and writing run on a QThreadPool thread (a file of thousands of examples
would stall the window); the table is disabled meanwhile and `loaded`/`saved` say when each ends.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QThreadPool, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .common import RED
from .jobs import Job, JobSignals

log = logging.getLogger(__name__)

EXAMPLES, QUESTIONS = "examples", "questions"
ANSWER_SEPARATOR = " | "


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingExamples", text)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSONL file (blank lines skipped); ValueError naming the line."""
    records = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object")
        records.append(record)
    return records


def _pair(record: dict) -> Optional[tuple[str, str]]:
    """(question, answer) of a one-turn conversation, else None."""
    messages = record.get("messages")
    if (isinstance(messages, list) and len(messages) == 2 and all(isinstance(m, dict) for m in messages)
            and [m.get("role") for m in messages] == ["user", "assistant"]):
        return str(messages[0].get("content", "")), str(messages[1].get("content", ""))
    return None


def check_and_write(records: list[dict], path: Path, mode: str) -> int:
    """Check every row as training (EXAMPLES) or the quiz (QUESTIONS) reads it, then write the
    file atomically; ValueError naming the first bad row, nothing written. Runs off the GUI thread."""
    if not records:
        raise ValueError(_tr("nothing left to save: keep at least one row"))
    for n, record in enumerate(records, start=1):
        try:
            _check(record, mode)
        except ValueError as exc:
            raise ValueError(_tr("row {n}: {problem}").format(n=n, problem=str(exc))) from exc
    if mode == QUESTIONS:
        from ...training.quiz import QuizQuestion, write_questions
        write_questions([QuizQuestion(r["question"], r["answers"]) for r in records], path)
    else:
        from ...training.knowledge import write_examples
        write_examples(records, path)
    return len(records)


def _check(record: dict, mode: str) -> None:
    if mode == QUESTIONS:
        from ...training.quiz import parse_question
        parse_question({k: v for k, v in record.items() if k in ("question", "answers", "source")})
    else:
        from ...training.knowledge import check_example
        check_example(record)


class JsonlEditor(QDialog):
    """Edit a JSONL of examples or questions. `loaded(ok)` when the file has been read (or could
    not be: the reason is shown); `saved(path)` after a successful save; `save_failed(reason)`."""

    loaded = Signal(bool)
    saved = Signal(str)
    save_failed = Signal(str)

    def __init__(self, path: Path, mode: str = EXAMPLES, parent: Optional[QWidget] = None,
                 pool: Optional[QThreadPool] = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.mode = mode
        self.pool = pool or QThreadPool.globalInstance()
        self.setWindowTitle(_tr("Training examples") if mode == EXAMPLES else _tr("Quiz questions"))
        self.resize(900, 560)
        self.records: list[dict] = []
        self.busy = False
        self._saving: list[dict] = []
        self._load_signals, self._save_signals = JobSignals(), JobSignals()
        self._load_signals.done.connect(self._on_loaded)
        self._load_signals.failed.connect(self._on_load_failed)
        self._save_signals.done.connect(self._on_saved)
        self._save_signals.failed.connect(self._on_save_failed)
        self.table = QTableWidget(0, 3)
        labels = ([_tr("Kind"), _tr("Question"), _tr("Answer or text")] if mode == EXAMPLES
                  else [_tr("#"), _tr("Question"), _tr("Accepted answers (separated by |)")])
        self.table.setHorizontalHeaderLabels(labels)
        self.table.setAccessibleName(self.windowTitle())
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        self.info = QLabel(self.path.name)
        self.info.setWordWrap(True)
        self.delete_button = QPushButton(_tr("Delete selected rows"))
        self.save_button = QPushButton(_tr("Save"))
        self.close_button = QPushButton(_tr("Close"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.delete_button.clicked.connect(self.delete_selected)
        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.close)
        self._set_busy(True, _tr("Reading {file}…").format(file=str(self.path)))
        self.pool.start(Job(0, lambda: read_records(self.path), self._load_signals))

    def _set_busy(self, busy: bool, message: str = "") -> None:
        self.busy = busy
        for widget in (self.table, self.delete_button, self.save_button):
            widget.setEnabled(not busy)
        if message:
            self.info.setText(message)
            self.info.setStyleSheet("")

    @Slot(int, object)
    def _on_loaded(self, _ticket: int, records: object) -> None:
        self.records = list(records)  # type: ignore[arg-type]
        self._set_busy(False)
        self.fill()
        self.loaded.emit(True)

    @Slot(int, str)
    def _on_load_failed(self, _ticket: int, message: str) -> None:
        self._set_busy(False)
        self.table.setEnabled(False)
        self.save_button.setEnabled(False)
        self.delete_button.setEnabled(False)
        self.info.setText(_tr("Cannot open {file}: {reason}").format(file=str(self.path), reason=message))
        self.info.setStyleSheet(RED)
        self.loaded.emit(False)

    def _item(self, text: str, editable: bool) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        flags = Qt.ItemIsSelectable | Qt.ItemIsEnabled | (Qt.ItemIsEditable if editable else Qt.NoItemFlags)
        item.setFlags(flags)
        return item

    def fill(self) -> None:
        self.table.setRowCount(len(self.records))
        for row, record in enumerate(self.records):
            self.table.setItem(row, 0, self._item(self._kind(row, record), False))
            for column, (text, editable) in enumerate(self._cells(record), start=1):
                self.table.setItem(row, column, self._item(text, editable))
        self.info.setText(_tr("{n} rows in {file}. Double-click a cell to edit it.").format(
            n=len(self.records), file=str(self.path)))
        self.info.setStyleSheet("")

    def _kind(self, row: int, record: dict) -> str:
        return str(record.get("kind", "")) if self.mode == EXAMPLES else str(row + 1)

    def _cells(self, record: dict) -> list[tuple[str, bool]]:
        if self.mode == QUESTIONS:
            answers = record.get("answers") if isinstance(record.get("answers"), list) else []
            return [(str(record.get("question", "")), True), (ANSWER_SEPARATOR.join(map(str, answers)), True)]
        if "text" in record:
            return [("—", False), (str(record["text"]), True)]
        pair = _pair(record)
        if pair is not None:
            return [(pair[0], True), (pair[1], True)]
        messages = record.get("messages") if isinstance(record.get("messages"), list) else []
        whole = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages if isinstance(m, dict))
        return [(_tr("(a conversation of {n} messages)").format(n=len(messages)), False), (whole, False)]

    def rows(self) -> list[dict]:
        """The records as the table shows them now (edits applied)."""
        out = []
        for row, record in enumerate(self.records):
            record = copy.deepcopy(record)
            first, second = self.table.item(row, 1).text(), self.table.item(row, 2).text()
            if self.mode == QUESTIONS:
                record["question"] = first.strip()
                record["answers"] = [a.strip() for a in second.split("|") if a.strip()]
            elif "text" in record:
                record["text"] = second
            elif _pair(record) is not None:
                record["messages"][0]["content"], record["messages"][1]["content"] = first, second
            out.append(record)
        return out

    @Slot()
    def delete_selected(self) -> None:
        chosen = sorted({index.row() for index in self.table.selectionModel().selectedRows()}, reverse=True)
        if not chosen:
            return
        kept = self.rows()
        for row in chosen:
            del kept[row]
        self.records = kept
        self.fill()

    @Slot()
    def save(self) -> None:
        """Check every row as training or the quiz will read it and write the file, on a pool
        thread; `saved` or `save_failed` (the reason also shown) when done."""
        if self.busy:
            return
        self._saving = self.rows()
        self._set_busy(True, _tr("Saving…"))
        records, path, mode = self._saving, self.path, self.mode
        self.pool.start(Job(0, lambda: check_and_write(records, path, mode), self._save_signals))

    @Slot(int, object)
    def _on_saved(self, _ticket: int, count: object) -> None:
        self.records = self._saving
        self._set_busy(False)
        self.info.setText(_tr("Saved {n} rows to {file}.").format(n=count, file=str(self.path)))
        self.saved.emit(str(self.path))

    @Slot(int, str)
    def _on_save_failed(self, _ticket: int, message: str) -> None:
        self._set_busy(False)
        self.info.setText(_tr("Not saved: {reason}").format(reason=message))
        self.info.setStyleSheet(RED)
        self.save_failed.emit(message)
