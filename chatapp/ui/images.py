"""Images in the window: decoding and thumbnailing off the GUI thread, the composer's tray of
attached images (thumbnails, remove buttons, their context cost and the model's limit) and the
dialog that shows one larger (a message's thumbnails: ui.message_images).

`Thumbnailer` reads and checks an image (text.images.open_image_bytes: the size limits, bombs,
damaged files) and makes its thumbnail in a pool thread; the result comes back through a signal of
a QObject living in the GUI thread, connected to methods (not lambdas: those would run in the pool
thread, see DESIGN.md).
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget)

log = logging.getLogger(__name__)

THUMB_PX = 64
VIEW_PX = 900  # the larger view's longest side
IMAGE_FILTER = "*.png *.jpg *.jpeg *.gif *.bmp *.webp *.tif *.tiff"


def _tr(text: str) -> str:
    return QGuiApplication.translate("Images", text)


@dataclass(frozen=True)
class ReadyImage:
    """An image checked and thumbnailed: its bytes (as stored and sent), name, size, thumbnail PNG."""

    data: bytes
    name: str
    width: int
    height: int
    thumbnail: bytes


def prepare_image(data: Optional[bytes], name: str, path: Optional[str] = None, qimage=None,
                  max_side: int = THUMB_PX) -> ReadyImage:
    """Check and thumbnail one image (a pool thread runs this): from `path`, `data`, or a pasted
    QImage (saved as PNG). ImageError (text.images) when it cannot be used."""
    from ..text.images import ImageError, open_image, open_image_bytes, to_rgb

    if qimage is not None:
        buffer = QBuffer()
        buffer.open(QIODevice.WriteOnly)
        qimage.save(buffer, "PNG")
        data = bytes(buffer.data())
    if path is not None:
        image = open_image(path)  # checks the file size before reading it
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ImageError(f"{path}: cannot read the image ({exc.strerror or exc})") from exc
    else:
        image = open_image_bytes(data or b"", name)
    small = to_rgb(image)
    small.thumbnail((max_side, max_side))
    out = io.BytesIO()
    small.save(out, format="PNG")
    return ReadyImage(data, name, image.width, image.height, out.getvalue())


class Thumbnailer(QObject):
    """prepare_image in a pool thread; `ready(token, ReadyImage)` or `failed(token, message)` in the GUI thread."""

    ready = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")
        self._next = 0

    def submit(self, data: Optional[bytes] = None, name: str = "image", path: Optional[str] = None,
               qimage=None, max_side: int = THUMB_PX) -> int:
        self._next += 1
        token = self._next
        self._pool.submit(self._run, token, data, name, path, qimage, max_side)
        return token

    def _run(self, token, data, name, path, qimage, max_side) -> None:
        try:
            self.ready.emit(token, prepare_image(data, name, path, qimage, max_side))
        except ValueError as exc:  # ImageError
            self.failed.emit(token, str(exc))
        except Exception as exc:  # never lost silently in a pool thread
            log.exception("thumbnailing %s failed", name)
            self.failed.emit(token, f"{name}: {exc}")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def pixmap_from_png(data: bytes) -> QPixmap:
    pixmap = QPixmap()
    pixmap.loadFromData(QByteArray(data))
    return pixmap


class ImageTray(QWidget):
    """The images attached to the message being written: thumbnails with a remove button, the
    context each costs and the model's limit; errors (a bad image, too many) shown here.

    Each image's cost (Idefics3's depends on its size) is asked of the generation worker:
    `cost_requested(token, ReadyImage)` goes out, `set_cost(token, n)` or `cost_failed(token,
    message)` comes back; a new model asks again, and answers for an older token are dropped."""

    changed = Signal()
    cost_requested = Signal(int, object)  # token, ReadyImage (to the worker's image_cost)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageTray")
        self.images: list[ReadyImage] = []
        self.pending = 0  # images still being read
        self.vision = False
        self.max_images = 0
        self.image_tokens = 0
        self.model_name = ""
        self._cost_tokens: list[int] = []  # parallel to images: the token of each one's cost request
        self.costs: dict[int, int] = {}  # token -> context positions
        self._cost_errors: dict[int, str] = {}  # token -> why the cost is unknown
        self._next_token = 0
        self.thumbnailer = Thumbnailer(self)
        self.thumbnailer.ready.connect(self._on_ready)
        self.thumbnailer.failed.connect(self._on_failed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.row = QHBoxLayout()
        self.row.addStretch(1)
        layout.addLayout(self.row)
        self.info_label = QLabel("")
        self.info_label.setObjectName("imageInfo")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.error_label = QLabel("")
        self.error_label.setObjectName("imageError")
        self.error_label.setStyleSheet("color: #c0392b;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        self._tiles: list[QWidget] = []
        self._refresh()

    # -- the model ---------------------------------------------------------------------------
    def set_model(self, name: str, vision: bool, max_images: int, image_tokens: int) -> None:
        self.model_name, self.vision, self.max_images, self.image_tokens = name, vision, max_images, image_tokens
        self.costs, self._cost_errors = {}, {}
        self._cost_tokens = [self._ask_cost(image) for image in self.images]  # this model's costs
        self._refresh()

    def _ask_cost(self, image: ReadyImage) -> int:
        self._next_token += 1
        if self.vision:
            self.cost_requested.emit(self._next_token, image)
        return self._next_token

    @Slot(int, int)
    def set_cost(self, token: int, cost: int) -> None:
        if token in self._cost_tokens:
            self.costs[token] = cost
            self._refresh()

    @Slot(int, str)
    def cost_failed(self, token: int, message: str) -> None:
        if token in self._cost_tokens:
            self._cost_errors[token] = message
            self._refresh()

    def image_costs(self) -> list[Optional[int]]:
        """Each attached image's context cost, None while unknown."""
        return [self.costs.get(token) for token in self._cost_tokens]

    # -- adding and removing -----------------------------------------------------------------
    def add_path(self, path: str) -> None:
        self._start(path=path, name=Path(path).name)

    def add_bytes(self, data: bytes, name: str) -> None:
        self._start(data=data, name=name)

    def add_qimage(self, image: QImage, name: str = "") -> None:
        self._start(qimage=QImage(image), name=name or _tr("pasted image"))

    def _start(self, **what) -> None:
        self.error_label.hide()
        if self.max_images and len(self.images) + self.pending >= self.max_images:
            self.show_error(_tr("A message can hold {n} images.").format(n=self.max_images))
            return
        self.pending += 1
        self.thumbnailer.submit(**what)
        self._refresh()

    @Slot(int, object)
    def _on_ready(self, _token: int, image: ReadyImage) -> None:
        self.pending -= 1
        self.images.append(image)
        self._cost_tokens.append(self._ask_cost(image))
        self._refresh()

    @Slot(int, str)
    def _on_failed(self, _token: int, message: str) -> None:
        self.pending -= 1
        self.show_error(message)
        self._refresh()

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.show()  # also when no image is attached (the only one was refused)

    def remove(self, index: int) -> None:
        del self.images[index]
        del self._cost_tokens[index]
        self.error_label.hide()
        self._refresh()

    def take(self) -> list[ReadyImage]:
        """The attached images, emptying the tray (the message was sent)."""
        images, self.images = self.images, []
        self._cost_tokens, self.costs, self._cost_errors = [], {}, {}
        self.error_label.hide()
        self._refresh()
        return images

    # -- showing -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        for tile in self._tiles:
            tile.setParent(None)  # out of the tray now, freed later
            tile.deleteLater()
        self._tiles = []
        for i, image in enumerate(self.images):
            tile = QWidget()
            tile.setObjectName("imageTile")
            box = QVBoxLayout(tile)
            box.setContentsMargins(0, 0, 0, 0)
            thumb = QLabel()
            thumb.setPixmap(pixmap_from_png(image.thumbnail))
            thumb.setToolTip(f"{image.name} ({image.width}×{image.height})")
            box.addWidget(thumb)
            if self.vision:
                cost = QLabel(self._cost_text(self._cost_tokens[i]))
                cost.setObjectName("imageCost")
                cost.setToolTip(self._cost_errors.get(self._cost_tokens[i], ""))
                box.addWidget(cost, 0, Qt.AlignHCenter)
            remove = QToolButton(text="×")
            remove.setObjectName("removeImage")
            remove.setAccessibleName(_tr("Remove image {name}").format(name=image.name))
            remove.clicked.connect(lambda _=False, i=i: self.remove(i))
            box.addWidget(remove, 0, Qt.AlignHCenter)
            self.row.insertWidget(i, tile)
            self._tiles.append(tile)
        self.info_label.setText(self.describe())
        self.setVisible(bool(self.images or self.pending or self.error_label.text() and
                             not self.error_label.isHidden()))
        self.info_label.setVisible(bool(self.images or self.pending))
        self.changed.emit()

    def describe(self) -> str:
        if not self.images and not self.pending:
            return ""
        if not self.vision:
            return _tr("{model} cannot see images; they will be refused at send.").format(
                model=self.model_name or _tr("The model"))
        costs = self.image_costs()
        known = [cost for cost in costs if cost is not None]
        text = _tr("{n} of at most {limit} images, {total} context tokens in all").format(
            n=len(self.images), limit=self.max_images, total=sum(known))
        counting = sum(1 for token in self._cost_tokens
                       if token not in self.costs and token not in self._cost_errors)
        if counting:
            text += " · " + _tr("counting {n}…").format(n=counting)
        if self.pending:
            text += " · " + _tr("reading {n}…").format(n=self.pending)
        return text

    def _cost_text(self, token: int) -> str:
        if token in self.costs:
            return _tr("{n} tokens").format(n=self.costs[token])
        return _tr("? tokens") if token in self._cost_errors else "…"

    def shutdown(self) -> None:
        self.thumbnailer.shutdown()


def image_files_filter() -> str:
    return _tr("Images ({patterns})").format(patterns=IMAGE_FILTER)


class ImageDialog(QDialog):
    """One image, larger: decoded and scaled to fit VIEW_PX (never enlarged) in the pool thread."""

    def __init__(self, image, thumbnailer: Thumbnailer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(image.name or _tr("Image"))
        self.setAttribute(Qt.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        self.label = QLabel(_tr("Loading…"))
        self.label.setAlignment(Qt.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        layout.addWidget(scroll)
        self.resize(360, 280)
        self.shown = False  # the image arrived
        thumbnailer.ready.connect(self._on_ready)
        thumbnailer.failed.connect(self._on_failed)
        self._token = thumbnailer.submit(data=bytes(image.data), name=image.name or "image", max_side=VIEW_PX)

    @Slot(int, object)
    def _on_ready(self, token: int, image: ReadyImage) -> None:
        if token != self._token:
            return
        pixmap = pixmap_from_png(image.thumbnail)
        self.label.setText("")
        self.label.setPixmap(pixmap)
        self.shown = True
        self.resize(pixmap.width() + 40, pixmap.height() + 40)

    @Slot(int, str)
    def _on_failed(self, token: int, message: str) -> None:
        if token == self._token:
            self.label.setText(_tr("This image cannot be shown: {message}").format(message=message))
