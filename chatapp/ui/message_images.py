"""A message's images in the conversation: thumbnails (a click shows one larger), and while the
message is edited, a Remove toggle under each and images added to the new version.

Thumbnails are made off the GUI thread by the chat view's `ui.images.Thumbnailer`; an added image
is read and checked there too (text.images' limits: a bad one is an error under the row, the others
stay).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from .images import THUMB_PX, ImageDialog, ReadyImage, Thumbnailer, pixmap_from_png


def _tr(text: str) -> str:
    return QGuiApplication.translate("Images", text)


class MessageImages(QWidget):
    """The images of a message as thumbnails; a click shows one larger (ImageDialog)."""

    def __init__(self, images: list, thumbnailer: Thumbnailer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageImages")
        self.images = list(images)  # objects with data and name (storage.attachments.Attachment, ReadyImage)
        self.stored = len(self.images)  # the message's own; after them, images added while editing
        self.thumbnailer = thumbnailer
        self.buttons: list[QToolButton] = []
        self.dialog: Optional[ImageDialog] = None
        self.remove_toggles: list[QToolButton] = []  # shown while the message is edited
        self.editing = False
        self.pending = 0  # added images still being read
        # connected before anything is submitted: the pool thread may finish a thumbnail at once, and
        # a signal emitted before the connection would never reach this row
        thumbnailer.ready.connect(self._on_ready)
        thumbnailer.failed.connect(self._on_failed)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self._row = QHBoxLayout()
        self._row.addStretch(1)
        outer.addLayout(self._row)
        self.error_label = QLabel()
        self.error_label.setObjectName("imageError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        outer.addWidget(self.error_label)
        self._tokens: dict[int, int] = {}  # thumbnail token -> image index
        self._adding: set[int] = set()  # tokens of images being added
        for image in self.images:
            self._add_cell(image)

    def _add_cell(self, image) -> int:
        i = len(self.buttons)
        button = QToolButton()
        button.setObjectName("messageImage")
        button.setText(image.name or _tr("image"))
        button.setAccessibleName(_tr("Show image {name}").format(name=image.name or str(i + 1)))
        button.setFixedSize(THUMB_PX * 2 + 8, THUMB_PX * 2 + 8)
        button.clicked.connect(lambda _=False, i=i: self.open(i))
        toggle = QToolButton(text=_tr("Remove"), checkable=True)
        toggle.setObjectName("removeMessageImage")
        toggle.setAccessibleName(_tr("Leave image {name} out of the edited message").format(
            name=image.name or str(i + 1)))
        toggle.toggled.connect(lambda off, i=i: self._mark(i, off))
        toggle.setVisible(self.editing)
        cell = QVBoxLayout()
        cell.addWidget(button)
        cell.addWidget(toggle, 0, Qt.AlignHCenter)
        self._row.insertLayout(self._row.count() - 1, cell)  # before the stretch
        self.buttons.append(button)
        self.remove_toggles.append(toggle)
        if getattr(image, "thumbnail", None):  # read and thumbnailed already (added while editing)
            self._show_thumbnail(i, image)
        else:
            self._tokens[self.thumbnailer.submit(data=bytes(image.data), name=image.name or "image",
                                                 max_side=THUMB_PX * 2)] = i
        return i

    @Slot(int, object)
    def _on_ready(self, token: int, image: ReadyImage) -> None:
        if token in self._adding:  # an image added while editing: read and checked, now shown
            self._adding.discard(token)
            self.pending -= 1
            if self.editing:
                self.images.append(image)
                self._add_cell(image)
            return
        i = self._tokens.pop(token, None)
        if i is not None:
            self._show_thumbnail(i, image)

    def _show_thumbnail(self, i: int, image: ReadyImage) -> None:
        pixmap = pixmap_from_png(image.thumbnail)
        self.buttons[i].setIcon(pixmap)
        self.buttons[i].setIconSize(pixmap.size())
        self.buttons[i].setText("")
        self.buttons[i].setToolTip(f"{image.name} ({image.width}×{image.height})")

    @Slot(int, str)
    def _on_failed(self, token: int, message: str) -> None:
        if token in self._adding:
            self._adding.discard(token)
            self.pending -= 1
            self.error_label.setText(message)
            self.error_label.show()
            return
        i = self._tokens.pop(token, None)
        if i is not None:
            self.buttons[i].setText(_tr("(unreadable)"))
            self.buttons[i].setToolTip(message)

    # -- editing --------------------------------------------------------------------------
    def set_editing(self, editing: bool) -> None:
        """While the message is edited, each image has a Remove toggle (its new version leaves the
        image out) and images can be added; afterwards the added ones and the toggles go, and
        every image of the message shows again."""
        self.editing = editing
        if not editing:
            while len(self.images) > self.stored:
                self._remove_cell(len(self.images) - 1)
            self._adding.clear()
            self.pending = 0
            self.error_label.hide()
        for toggle in self.remove_toggles:
            if not editing:
                toggle.setChecked(False)
            toggle.setVisible(editing)

    def add_paths(self, paths: list[str]) -> None:
        """Add image files to the edited version (read and checked off the GUI thread)."""
        self.error_label.hide()
        for path in paths:
            self._adding.add(self.thumbnailer.submit(path=path, name=Path(path).name, max_side=THUMB_PX * 2))
            self.pending += 1

    def say_still_reading(self) -> None:
        self.error_label.setText(_tr("An added image is still being read; save again once it shows."))
        self.error_label.show()

    def chosen(self) -> list:
        """The images the edited version holds: the message's not removed, then those added."""
        return [image for image, toggle in zip(self.images, self.remove_toggles) if not toggle.isChecked()]

    def changed(self) -> bool:
        """Whether editing removed or added any image."""
        return len(self.images) != self.stored or any(t.isChecked() for t in self.remove_toggles)

    def _remove_cell(self, index: int) -> None:
        for widget in (self.buttons.pop(index), self.remove_toggles.pop(index)):
            widget.hide()
            widget.deleteLater()
        self.images.pop(index)

    def _mark(self, index: int, removed: bool) -> None:
        self.buttons[index].setEnabled(not removed)  # greyed: it will not go with the new version
        self.remove_toggles[index].setText(_tr("Keep") if removed else _tr("Remove"))

    def open(self, index: int) -> "ImageDialog":
        self.dialog = ImageDialog(self.images[index], self.thumbnailer, self.window())
        self.dialog.show()
        return self.dialog
