"""Left pane: conversations, newest first; new, rename, delete (with undo), search by text."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu,
                               QPushButton, QVBoxLayout, QWidget)


def _tr(text: str) -> str:
    return QGuiApplication.translate("ConversationList", text)


class ConversationList(QWidget):
    selected = Signal(int)  # conversation id
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    search_changed = Signal(str)
    export_requested = Signal(int, str)  # id, "markdown" | "json"
    import_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.new_button = QPushButton(_tr("New chat"))
        self.new_button.setAccessibleName(_tr("New chat"))
        self.new_button.clicked.connect(self.new_requested)
        self.import_button = QPushButton(_tr("Import…"))
        self.import_button.setAccessibleName(_tr("Import a conversation from JSON"))
        self.import_button.clicked.connect(self.import_requested)
        top.addWidget(self.new_button, 1)
        top.addWidget(self.import_button)
        layout.addLayout(top)
        self.search = QLineEdit()
        self.search.setPlaceholderText(_tr("Search conversations"))
        self.search.setAccessibleName(_tr("Search conversations"))
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.search_changed)
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setAccessibleName(_tr("Conversations"))
        self.list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_edited)
        # long titles end in "…" (the full one is the tooltip) instead of scrolling sideways
        self.list.setTextElideMode(Qt.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        layout.addWidget(self.list)
        self.no_match = QLabel(_tr("No conversation matches this search."))
        self.no_match.setObjectName("noMatch")
        self.no_match.setWordWrap(True)
        self.no_match.hide()
        layout.addWidget(self.no_match)
        self._filling = False

    def set_conversations(self, rows: list[tuple[int, str, str]], current: int | None) -> None:
        """rows: (id, title, tooltip); keeps `current` selected without emitting `selected`."""
        self._filling = True
        self.list.clear()
        for conv_id, title, tip in rows:
            item = QListWidgetItem(title or _tr("Untitled"))
            item.setData(Qt.UserRole, conv_id)
            item.setToolTip(tip or title)
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            self.list.addItem(item)
            if conv_id == current:
                self.list.setCurrentItem(item)
        self.no_match.setVisible(not rows and bool(self.search.text().strip()))
        self._filling = False

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item else None

    def _current_changed(self, item, _previous) -> None:
        if item is not None and not self._filling:
            self.selected.emit(item.data(Qt.UserRole))

    def _item_edited(self, item) -> None:
        if not self._filling:
            self.rename_requested.emit(item.data(Qt.UserRole), item.text().strip())

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        conv_id = item.data(Qt.UserRole)
        menu = QMenu(self)
        menu.addAction(_tr("Rename"), lambda: self.list.editItem(item))
        menu.addAction(_tr("Export as Markdown…"), lambda: self.export_requested.emit(conv_id, "markdown"))
        menu.addAction(_tr("Export as JSON…"), lambda: self.export_requested.emit(conv_id, "json"))
        menu.addSeparator()
        menu.addAction(_tr("Delete"), lambda: self.delete_requested.emit(conv_id))
        menu.exec(self.list.mapToGlobal(pos))
