"""A reply's sources and prompt: the numbered passages under it, the passage dialog, and
"What the model saw".

A source is any object with number, path, heading, start, end and text (the engine's
`retrieval.Source` while a reply is new, the store's `MessageSource` after reopening). The
passage dialog shows the file, the heading and the passage, with the words of the question
highlighted where the passage contains them: the text that made it match.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import (QColor, QDesktopServices, QFontDatabase, QGuiApplication, QTextCharFormat,
                           QTextCursor)
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFrame, QLabel, QPlainTextEdit, QPushButton,
                               QTextEdit, QToolButton, QVBoxLayout, QWidget)


def _tr(text: str) -> str:
    return QGuiApplication.translate("SourcesView", text)


# Words too common to show why a passage matched.
_STOPWORDS = frozenset("""a an and are as at be by did do does for from had has have how in is it its of on or
that the their this to was were what when where which who whom why will with you your""".split())
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def query_terms(query: str) -> list[str]:
    """The words of `query` worth highlighting: not stop words, 3+ letters (2-character pieces
    of Chinese, Japanese or Korean text, which has no spaces between words)."""
    terms: list[str] = []
    for word in _WORD.findall(query.lower()):
        if _CJK.search(word):
            pieces = [word[i:i + 2] for i in range(max(1, len(word) - 1))]
        elif len(word) >= 3 and word not in _STOPWORDS:
            pieces = [word]
        else:
            pieces = []
        terms += [p for p in pieces if p not in terms]
    return terms


def matching_spans(text: str, query: str) -> list[tuple[int, int]]:
    """[start, end) spans of `text` holding a term of `query` (case-insensitive), merged, in order."""
    lowered = text.lower()
    spans = []
    for term in query_terms(query):
        boundary = "" if _CJK.search(term) else r"\b"
        spans += [(m.start(), m.end()) for m in re.finditer(f"{boundary}{re.escape(term)}", lowered)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def source_label(source) -> str:
    return f"[{source.number}] " + Path(source.path).name + (f" › {source.heading}" if source.heading else "")


class SourceList(QFrame):
    """The numbered sources under a reply, one button each."""

    source_clicked = Signal(int)  # the source's number

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceList")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 4, 0, 0)
        self.layout_.setSpacing(0)
        self.title = QLabel(_tr("Sources"))
        self.title.setObjectName("sourcesTitle")
        self.layout_.addWidget(self.title)
        self.buttons: list[QToolButton] = []

    def set_sources(self, sources: Sequence) -> None:
        for button in self.buttons:
            button.deleteLater()
        self.buttons = []
        for source in sources:
            button = QToolButton(text=source_label(source))
            button.setAutoRaise(True)
            button.setMinimumWidth(1)  # a long heading is cut at the column's edge; the tooltip has the path
            button.setCursor(Qt.PointingHandCursor)
            button.setToolTip(source.path)
            button.setAccessibleName(_tr("Open source {n}").format(n=source.number))
            button.clicked.connect(lambda _=False, n=source.number: self.source_clicked.emit(n))
            self.layout_.addWidget(button, 0, Qt.AlignLeft)
            self.buttons.append(button)
        self.setVisible(bool(sources))


class SourceDialog(QDialog):
    """One passage: its file (with "Open file"), heading and text, the question's words highlighted."""

    def __init__(self, source, query: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.setWindowTitle(_tr("Source {n}").format(n=source.number))
        self.resize(640, 420)
        layout = QVBoxLayout(self)
        self.file_label = QLabel(source.path)
        self.file_label.setObjectName("sourceFile")
        self.file_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.file_label.setWordWrap(True)
        layout.addWidget(self.file_label)
        self.heading_label = QLabel(source.heading)
        self.heading_label.setObjectName("sourceHeading")
        self.heading_label.setVisible(bool(source.heading))
        layout.addWidget(self.heading_label)
        self.span_label = QLabel(_tr("Characters {start}–{end} of the document's text").format(
            start=source.start, end=source.end))
        self.span_label.setObjectName("sourceSpan")
        layout.addWidget(self.span_label)
        self.text = QTextEdit(readOnly=True)
        self.text.setAccessibleName(_tr("Passage"))
        self.text.setPlainText(source.text)
        layout.addWidget(self.text, 1)
        self.spans = matching_spans(source.text, query)
        self._highlight(self.spans)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        self.open_button = QPushButton(_tr("Open file"))
        self.open_button.clicked.connect(self.open_file)
        exists = Path(source.path).is_file()
        self.open_button.setEnabled(exists)
        if not exists:
            self.open_button.setToolTip(_tr("The file is no longer there."))
        buttons.addButton(self.open_button, QDialogButtonBox.ActionRole)
        layout.addWidget(buttons)

    def _highlight(self, spans: list[tuple[int, int]]) -> None:
        fmt = QTextCharFormat()
        fmt.setBackground(QColor("#ffe066"))
        fmt.setForeground(QColor("#000000"))
        document = self.text.document()
        for start, end in spans:
            cursor = QTextCursor(document)
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.KeepAnchor)
            cursor.mergeCharFormat(fmt)
        if spans:  # the first match in view
            cursor = QTextCursor(document)
            cursor.setPosition(spans[0][0])
            self.text.setTextCursor(cursor)
            self.text.ensureCursorVisible()

    def highlighted_text(self) -> list[str]:
        """The highlighted pieces of the passage, as shown (read back from the document)."""
        pieces = []
        block = self.text.document().begin()
        while block.isValid():
            for fragment in _fragments(block):
                if fragment.charFormat().background().color() == QColor("#ffe066"):
                    pieces.append(fragment.text())
            block = block.next()
        return pieces

    def open_file(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.source.path).resolve())))


def _fragments(block):
    it = block.begin()
    while not it.atEnd():
        fragment = it.fragment()
        if fragment.isValid():
            yield fragment
        it += 1


class PromptDialog(QDialog):
    """What the model saw: the prompt of one reply, its template markers included."""

    def __init__(self, prompt: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("What the model saw"))
        self.resize(720, 520)
        layout = QVBoxLayout(self)
        note = QLabel(_tr("The exact prompt of this reply: the system prompt, the conversation that fitted the "
                          "context and any document passages, with the chat template's markers."))
        note.setWordWrap(True)
        layout.addWidget(note)
        self.text = QPlainTextEdit(prompt, readOnly=True)
        self.text.setAccessibleName(_tr("Prompt"))
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        layout.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        copy = QPushButton(_tr("Copy"))
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(prompt))
        buttons.addButton(copy, QDialogButtonBox.ActionRole)
        layout.addWidget(buttons)
