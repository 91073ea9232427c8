"""A reply's reasoning (Qwen3's `<think>` part), shown collapsed above the answer: a toggle that
names it ("Thinking…" while it streams, "Reasoning (N words)" after) and the text under it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QLabel, QToolButton, QVBoxLayout, QWidget

from ..text.thinking import SplitReply


def _tr(text: str) -> str:
    return QGuiApplication.translate("ThinkingView", text)


class ThinkingBox(QFrame):
    """Collapsed by default; the user's choice to open it holds while the reply streams."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("thinkingBox")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.RightArrow)
        self.toggle.setAccessibleName(_tr("Show the model's reasoning"))
        self.toggle.toggled.connect(self.set_expanded)
        layout.addWidget(self.toggle)
        self.text = QLabel()
        self.text.setObjectName("thinkingText")
        self.text.setTextFormat(Qt.PlainText)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.text.setVisible(False)
        layout.addWidget(self.text)
        self.setVisible(False)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        if self.toggle.isChecked() != expanded:
            self.toggle.setChecked(expanded)  # comes back here through toggled
            return
        self.toggle.setArrowType(Qt.DownArrow if expanded else Qt.RightArrow)
        self.text.setVisible(expanded)

    def show_reply(self, split: SplitReply) -> None:
        """Show `split`'s reasoning (hidden when the reply has none)."""
        self.setVisible(split.has_thinking)
        if not split.has_thinking:
            return
        if split.thinking_open:
            self.toggle.setText(_tr("Thinking…"))
        else:
            words = len(split.thinking.split())
            self.toggle.setText(_tr("Reasoning ({n} words)").format(n=words) if words else _tr("No reasoning"))
        self.text.setText(split.thinking)
