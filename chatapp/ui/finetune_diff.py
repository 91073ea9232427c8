"""What the fine-tune changed: a reply, pasted text or a document scored token by token with the
adapter off and on (engine/token_scores.py), coloured by how much more (green) or less (red)
likely the adapter makes each token, or by each model's surprise, with both perplexities.

The scoring runs in the generation worker (it owns the model and the adapter), off the GUI
thread, with progress and cancel; the chat waits meanwhile, as it does for a comparison.
`FineTuneDiffView` only asks and shows; `FineTuneDiffController` talks to the worker.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from ..engine.backend import ScoreRequest
from .token_view import TokenText, legend_html, percent, probability_colour, tokens_html


def _tr(text: str) -> str:
    return QCoreApplication.translate("FineTuneDiff", text)


# (lowest change in nats, colour): log p_adapter - log p_base
CHANGE_BANDS = ((1.0, "#52b788"), (0.25, "#b7e4c7"), (-0.25, "#f1f1f1"), (-1.0, "#ffadad"), (-math.inf, "#e5383b"))
MODES = ("change", "surprise_base", "surprise_adapter")


def change_colour(change: float) -> str:
    return next(colour for low, colour in CHANGE_BANDS if change >= low)


def token_colour(score, mode: str) -> str:
    if mode == "change" and score.difference is not None:
        return change_colour(score.difference)
    logprob = score.logprob_adapter if mode == "surprise_adapter" and score.logprob_adapter is not None \
        else score.logprob_base
    return probability_colour(math.exp(logprob))


class FineTuneDiffView(QWidget):
    score_requested = Signal(str)  # the text to score
    cancel_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("What the fine-tune changed"))
        self.scores: list = []
        self.running = False
        layout = QVBoxLayout(self)
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText(_tr("A reply, any text, or a document opened here"))
        self.input.setAccessibleName(_tr("Text to score"))
        self.input.setMaximumHeight(110)
        layout.addWidget(self.input)
        row = QHBoxLayout()
        self.open_button = QPushButton(_tr("Open document…"))
        self.open_button.clicked.connect(self.open_document)
        row.addWidget(self.open_button)
        self.mode = QComboBox()
        self.mode.addItem(_tr("Colour by what the adapter changed"), "change")
        self.mode.addItem(_tr("Colour by surprise, base model"), "surprise_base")
        self.mode.addItem(_tr("Colour by surprise, with the adapter"), "surprise_adapter")
        self.mode.currentIndexChanged.connect(self._render)
        row.addWidget(self.mode)
        row.addStretch(1)
        self.score_button = QPushButton(_tr("Score"))
        self.score_button.clicked.connect(self.request)
        self.cancel_button = QPushButton(_tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.score_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.summary = QLabel("")
        self.summary.setObjectName("scoreSummary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        self.text = TokenText()
        self.text.token_hovered.connect(self._show_token)
        self.text.token_clicked.connect(self._show_token)
        layout.addWidget(self.text, 1)
        self.details = QLabel(_tr("Point at a token to see its log-probability under each model."))
        self.details.setTextFormat(Qt.PlainText)  # a token may be "<b>"
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        self.input.textChanged.connect(self._update_state)
        self._update_state()

    def set_text(self, text: str) -> None:
        self.input.setPlainText(text)

    def open_document(self, path: Optional[str] = None) -> None:
        """Read a document (any format the Train tab reads) into the text box."""
        from ..documents.reading import IngestOptions, read_file

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, _tr("Open document"))
            if not path:
                return
        document, report = read_file(Path(path), IngestOptions())
        if document is None:
            self.summary.setText(_tr("Could not read {path}: {reason}").format(path=path, reason=report.reason))
            return
        self.set_text(document.text)

    def _update_state(self) -> None:
        self.score_button.setEnabled(not self.running and bool(self.input.toPlainText().strip()))
        self.cancel_button.setEnabled(self.running)
        self.progress.setVisible(self.running)

    @Slot()
    def request(self) -> None:
        text = self.input.toPlainText()
        if not text.strip() or self.running:
            return
        self.set_running(True)
        self.summary.setText(_tr("Scoring…"))
        self.score_requested.emit(text)

    def set_running(self, running: bool) -> None:
        self.running = running
        if running:
            self.progress.setRange(0, 0)
        self._update_state()

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    @Slot(str)
    def show_error(self, message: str) -> None:
        self.set_running(False)
        self.summary.setText(_tr("Scoring was cancelled.") if message == "cancelled"
                             else _tr("Scoring failed: {message}").format(message=message))

    @Slot(object)
    def show_scores(self, scores: Sequence) -> None:
        from ..engine.token_scores import perplexity

        self.set_running(False)
        self.scores = list(scores)
        base = perplexity([s.logprob_base for s in self.scores])
        if self.scores and self.scores[0].logprob_adapter is not None:
            tuned = perplexity([s.logprob_adapter for s in self.scores])
            self.summary.setText(_tr("{n} tokens. Perplexity: base model {base:.2f}, with the adapter {tuned:.2f}.")
                                 .format(n=len(self.scores), base=base, tuned=tuned))
        else:
            self.summary.setText(_tr("{n} tokens. Perplexity {base:.2f}. No adapter is loaded: load one in the "
                                     "Chat tab to see what it changed.").format(n=len(self.scores), base=base))
        self._render()

    def _render(self) -> None:
        mode = self.mode.currentData()
        tuned = bool(self.scores) and self.scores[0].logprob_adapter is not None
        if mode == "change" and tuned:
            self.legend.setText(_tr("log p(adapter) − log p(base), in nats:") + " " + legend_html(
                [(CHANGE_BANDS[0][1], "> +1"), (CHANGE_BANDS[1][1], "+0.25…+1"), (CHANGE_BANDS[2][1], "±0.25"),
                 (CHANGE_BANDS[3][1], "−1…−0.25"), (CHANGE_BANDS[4][1], "< −1")]))
        else:
            self.legend.setText(_tr("Probability of each token (low = surprising):") + " " + legend_html(
                [(c, f"≥ {low:.0%}" if low else "< 5%") for low, c in
                 ((0.9, probability_colour(0.95)), (0.5, probability_colour(0.6)), (0.2, probability_colour(0.3)),
                  (0.05, probability_colour(0.1)), (0.0, probability_colour(0.01)))]))
        as_dicts = [{"token": s.token} for s in self.scores]
        self.text.setHtml(tokens_html(as_dicts, lambda i, _t: token_colour(self.scores[i], mode)))

    def _show_token(self, position: int) -> None:
        if not 0 <= position < len(self.scores):
            return
        s = self.scores[position]
        text = _tr("“{token}”: base log p {base:.3f} ({p_base}, surprise {bits_base:.2f} bits)").format(
            token=s.token, base=s.logprob_base, p_base=percent(math.exp(s.logprob_base)),
            bits_base=-s.logprob_base / math.log(2))
        if s.logprob_adapter is not None:
            text += _tr("; adapter log p {tuned:.3f} ({p_tuned}, surprise {bits_tuned:.2f} bits); change {change:+.3f}"
                        ).format(tuned=s.logprob_adapter, p_tuned=percent(math.exp(s.logprob_adapter)),
                                 bits_tuned=-s.logprob_adapter / math.log(2), change=s.difference)
        self.details.setText(text)


class FineTuneDiffController(QObject):
    """Connects a FineTuneDiffView to the generation worker; the chat is paused while it scores."""

    request_score = Signal(object)  # ScoreRequest (to the worker)

    def __init__(self, view: FineTuneDiffView, worker_thread, chat=None, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.view, self.worker_thread, self.chat = view, worker_thread, chat
        self.request_id: Optional[int] = None
        worker = worker_thread.worker
        self.request_score.connect(worker.score)
        worker.score_progress.connect(self._on_progress)
        worker.score_finished.connect(self._on_finished)
        worker.score_failed.connect(self._on_failed)
        view.score_requested.connect(self.score)
        view.cancel_requested.connect(self.cancel)

    @Slot(str)
    def score(self, text: str) -> None:
        if self.chat is not None and not self.chat.can_chat():
            self.view.show_error(_tr("wait for the reply to finish (or load a model) first"))
            return
        self.request_id = self.worker_thread.next_request_id()
        if self.chat is not None:
            self.chat.set_paused(True)
        self.request_score.emit(ScoreRequest(self.request_id, text))

    @Slot()
    def cancel(self) -> None:
        if self.request_id is not None:
            self.worker_thread.stop_scoring()

    def _done(self) -> None:
        self.request_id = None
        if self.chat is not None:
            self.chat.set_paused(False)

    @Slot(int, int, int)
    def _on_progress(self, request_id: int, done: int, total: int) -> None:
        if request_id == self.request_id:
            self.view.set_progress(done, total)

    @Slot(int, object)
    def _on_finished(self, request_id: int, scores: list) -> None:
        if request_id == self.request_id:
            self._done()
            self.view.show_scores(scores)

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        if request_id == self.request_id:
            self._done()
            self.view.show_error(message)
