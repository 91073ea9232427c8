"""Base model and fine-tuned model side by side, on one prompt with one seed.

The view only asks (`compare_requested(prompt, seed)`) and shows; the main window owns the
generation worker and answers by running it twice, adapter off then on, streaming each reply
into its pane (`append_base` / `append_tuned`, or `show_base` / `show_tuned` for the whole
text), and calls `set_running(False)` when both are done. With the same seed and sampling
settings, what differs between the panes comes from the adapter. Replies are Markdown, shown
rendered as in the chat (re-rendered as each piece arrives: replies here are short).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSpinBox,
                               QTextBrowser, QVBoxLayout, QWidget)


def _tr(text: str) -> str:
    return QGuiApplication.translate("CompareView", text)


class CompareView(QWidget):
    compare_requested = Signal(str, int)  # prompt, seed

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("Compare base and fine-tuned model"))
        self.adapter_path = ""
        self.running = False
        self.replies: dict[QTextBrowser, str] = {}  # each pane's reply as Markdown source
        layout = QVBoxLayout(self)
        self.adapter_label = QLabel(_tr("No adapter chosen"))
        self.adapter_label.setWordWrap(True)
        layout.addWidget(self.adapter_label)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText(_tr("A question about your documents"))
        self.prompt.setAccessibleName(_tr("Prompt to compare"))
        self.prompt.setMaximumHeight(90)
        layout.addWidget(self.prompt)
        row = QHBoxLayout()
        row.addWidget(QLabel(_tr("Seed")))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.setAccessibleName(_tr("Seed"))
        self.seed.setToolTip(_tr("Both replies use this seed, so the difference comes from the adapter."))
        row.addWidget(self.seed)
        row.addStretch(1)
        self.run_button = QPushButton(_tr("Compare"))
        self.run_button.setAccessibleName(_tr("Generate with both models"))
        row.addWidget(self.run_button)
        layout.addLayout(row)
        panes = QHBoxLayout()
        self.base_text = self._pane(panes, _tr("Base model"))
        self.tuned_text = self._pane(panes, _tr("Fine-tuned"))
        layout.addLayout(panes, 1)
        bottom = QHBoxLayout()
        self.status = QLabel("")
        bottom.addWidget(self.status, 1)
        self.close_button = QPushButton(_tr("Close"))
        self.close_button.setAccessibleName(_tr("Close the comparison"))
        self.close_button.clicked.connect(self.close)
        bottom.addWidget(self.close_button)
        layout.addLayout(bottom)
        self.run_button.clicked.connect(self.request)
        self.prompt.textChanged.connect(self._update_state)
        self._update_state()

    def _pane(self, row: QHBoxLayout, title: str) -> QTextBrowser:
        box = QGroupBox(title)
        inner = QVBoxLayout(box)
        text = QTextBrowser()
        text.setOpenLinks(False)  # a link in a reply is not followed inside the pane
        text.setAccessibleName(title)
        inner.addWidget(text)
        row.addWidget(box, 1)
        self.replies[text] = ""
        return text

    def _clear(self) -> None:
        for pane in self.replies:
            self.replies[pane] = ""
            pane.clear()

    def set_adapter(self, path: str, name: str = "") -> None:
        """The adapter to compare; another one than before starts with empty panes (no stale replies)."""
        if str(path) != self.adapter_path:
            self._clear()
            self.status.clear()
        self.adapter_path = str(path)
        self.adapter_label.setText(_tr("Fine-tuned: {name}").format(name=name or path))

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.key() == Qt.Key_Escape:  # a window of its own: Esc closes it, as in a dialog
            self.close()
            return
        super().keyPressEvent(event)

    def _update_state(self) -> None:
        self.run_button.setEnabled(not self.running and bool(self.prompt.toPlainText().strip())
                                   and bool(self.adapter_path))

    @Slot()
    def request(self) -> None:
        prompt = self.prompt.toPlainText().strip()
        if not prompt or self.running or not self.adapter_path:
            return
        self._clear()
        self.set_running(True)
        self.compare_requested.emit(prompt, self.seed.value())

    @Slot(bool)
    def set_running(self, running: bool) -> None:
        self.running = running
        self.status.setText(_tr("Generating…") if running else "")
        self._update_state()

    @Slot(str)
    def show_error(self, message: str) -> None:
        self.set_running(False)
        self.status.setText(_tr("Failed: {message}").format(message=message))

    # -- answers from the main window ----------------------------------------------------------
    @Slot(str)
    def show_base(self, text: str) -> None:
        _show(self.base_text, self.replies, text)

    @Slot(str)
    def show_tuned(self, text: str) -> None:
        _show(self.tuned_text, self.replies, text)

    @Slot(str)
    def append_base(self, delta: str) -> None:
        _show(self.base_text, self.replies, self.replies[self.base_text] + delta)

    @Slot(str)
    def append_tuned(self, delta: str) -> None:
        _show(self.tuned_text, self.replies, self.replies[self.tuned_text] + delta)


def _show(view: QTextBrowser, replies: dict, text: str) -> None:
    """Render `text` as Markdown in the pane, following the end if the reader was there."""
    replies[view] = text
    bar = view.verticalScrollBar()
    following = bar.value() >= bar.maximum() - 4
    view.setMarkdown(text)
    if following:
        bar.setValue(bar.maximum())
