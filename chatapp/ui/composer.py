"""The message composer (Enter sends, Shift+Enter starts a new line; an image pasted or dropped
on it goes to its image tray, ui/images.py) and, beside it, the conversation's Documents selector."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QPlainTextEdit


def _tr(text: str) -> str:
    return QGuiApplication.translate("Composer", text)


class Composer(QPlainTextEdit):
    submitted = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tray = None  # ui.images.ImageTray: where pasted and dropped images go

    def _image_paths(self, source) -> list[str]:
        from .images import IMAGE_FILTER

        suffixes = {pattern[1:] for pattern in IMAGE_FILTER.split()}
        return [url.toLocalFile() for url in source.urls()
                if url.isLocalFile() and url.toLocalFile().lower().endswith(tuple(suffixes))]

    def canInsertFromMimeData(self, source) -> bool:  # noqa: N802 (Qt naming)
        if self.tray is not None and (source.hasImage() or self._image_paths(source)):
            return True
        return super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:  # noqa: N802 (Qt naming): paste and drop
        if self.tray is not None:
            paths = self._image_paths(source)
            if paths:
                for path in paths:
                    self.tray.add_path(path)
                return
            if source.hasImage():
                self.tray.add_qimage(source.imageData())
                return
        super().insertFromMimeData(source)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class DocumentsSelector(QComboBox):
    """No documents, or one library: the open conversation's replies retrieve from it.

    The list of libraries is read again each time the list opens (the Documents tab may have
    added or removed one). `chosen` fires only for the user's choice, not for `show_library`.
    """

    chosen = Signal(str)  # library name, "" for none

    def __init__(self, list_libraries: Callable[[], list[str]] = lambda: []) -> None:
        super().__init__()
        self.list_libraries = list_libraries
        self.setObjectName("documentsSelector")
        self.setAccessibleName(_tr("Documents for this conversation"))
        self.setToolTip(_tr("Replies in this conversation use passages from the chosen document library"))
        self.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.setMinimumContentsLength(10)
        self._current = ""
        self._fill([])
        self.activated.connect(self._activated)

    def _fill(self, names: list[str]) -> None:
        self.blockSignals(True)
        self.clear()
        self.addItem(_tr("No documents"), "")
        for name in names:
            self.addItem(_tr("Documents: {name}").format(name=name), name)
        if self._current and self._current not in names:  # removed in the Documents tab: say so
            self.addItem(_tr("{name} (missing)").format(name=self._current), self._current)
        self.setCurrentIndex(max(0, self.findData(self._current)))
        self.blockSignals(False)

    def refresh(self) -> None:
        self._fill(self.list_libraries())

    def showPopup(self) -> None:  # noqa: N802 (Qt naming)
        self.refresh()
        super().showPopup()

    def show_library(self, name: str) -> None:
        """Show the open conversation's library (no `chosen` signal)."""
        self._current = name
        self.refresh()

    def current_library(self) -> str:
        return self.currentData() or ""

    def choose(self, name: str) -> None:
        """Choose `name` as the user would (tests, shortcuts)."""
        self.refresh()
        index = self.findData(name)
        if index < 0:
            raise LookupError(f"no document library named {name!r}")
        self.setCurrentIndex(index)
        self._activated(index)

    def _activated(self, index: int) -> None:
        self._current = self.itemData(index) or ""
        self.chosen.emit(self._current)
