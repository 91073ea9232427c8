"""Side by side: one prompt, one seed, two panes streaming together, each from a source of its own.

A pane's source is the loaded model without its adapter ("Base model"), the loaded model
wearing one of the trained adapters, or another model when both fit in memory. The view only
asks and shows: `compare_requested(prompt, seed, (left, right))` with two
`engine.side_by_side.PaneSource`s, `stop_requested` (ends both panes), and `fit_requested(spec)`
when a pane is set to another model; the training controller answers with `append(pane, text)` (or `show_text`),
`finish(panes)`, `show_error`, and `show_fit` / `show_fit_error`. Compare stays off while a
chosen model does not fit, and the view says why with the numbers. With the same seed and
settings, what differs between the panes comes from their sources. Replies are Markdown,
rendered as in the chat, re-rendered at most ~30 times a second while they stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QSpinBox, QTextBrowser, QVBoxLayout, QWidget)

from ..engine.side_by_side import PaneSource

RENDER_INTERVAL_MS = 33  # streamed text is re-rendered at most this often (Markdown is re-parsed whole)
ANOTHER_MODEL = "another-model"  # the combo entry that asks for a model file


def _tr(text: str) -> str:
    return QGuiApplication.translate("CompareView", text)


def _gib(n: Optional[int]) -> str:
    return "?" if n is None else f"{n / 1024**3:.2f}"


class _Pane:
    """One side: its source chooser, the reply (Markdown source and rendered) and a status line."""

    def __init__(self, title: str, row: QHBoxLayout) -> None:
        self.box = QGroupBox(title)
        inner = QVBoxLayout(self.box)
        self.source = QComboBox()
        self.source.setAccessibleName(_tr("{pane}: source").format(pane=title))
        inner.addWidget(self.source)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)  # a link in a reply is not followed inside the pane
        self.text.setAccessibleName(title)
        inner.addWidget(self.text, 1)
        self.status = QLabel("")
        inner.addWidget(self.status)
        row.addWidget(self.box, 1)
        self.reply = ""  # Markdown source
        self.dirty = False

    def chosen(self) -> Optional[PaneSource]:
        data = self.source.currentData()
        return data if isinstance(data, PaneSource) else None

    def render(self) -> None:
        """Render the reply, following the end if the reader was there."""
        self.dirty = False
        bar = self.text.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4
        self.text.setMarkdown(self.reply)
        if following:
            bar.setValue(bar.maximum())


class CompareView(QWidget):
    compare_requested = Signal(str, int, object)  # prompt, seed, (left PaneSource, right PaneSource)
    stop_requested = Signal()
    fit_requested = Signal(str)  # a model spec for a pane: does it fit beside the loaded model?

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("Side by side"))
        self.running = False
        self.adapters: list[tuple[str, str]] = []  # (name, folder) of the loaded model's adapters
        self.models: list[tuple[str, str]] = []  # (name, spec) of other models chosen so far
        self.fits: dict[str, Optional[bool]] = {}  # spec -> fits beside the loaded model (None: asking)
        self.fit_text: dict[str, str] = {}
        layout = QVBoxLayout(self)
        intro = QLabel(_tr("One prompt, one seed and the same sampling settings, answered by two sources at once."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText(_tr("A question about your documents"))
        self.prompt.setAccessibleName(_tr("Prompt to compare"))
        self.prompt.setMaximumHeight(90)
        layout.addWidget(self.prompt)
        row = QHBoxLayout()
        row.addWidget(QLabel(_tr("Seed")))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.setAccessibleName(_tr("Seed"))
        self.seed.setToolTip(_tr("Both replies use this seed, so the difference comes from their sources."))
        row.addWidget(self.seed)
        row.addStretch(1)
        self.run_button = QPushButton(_tr("Compare"))
        self.run_button.setAccessibleName(_tr("Generate in both panes"))
        row.addWidget(self.run_button)
        self.stop_button = QPushButton(_tr("Stop"))
        self.stop_button.setAccessibleName(_tr("Stop both replies"))
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        panes = QHBoxLayout()
        self.panes = [_Pane(_tr("Left"), panes), _Pane(_tr("Right"), panes)]
        layout.addLayout(panes, 1)
        self.fit_label = QLabel("")
        self.fit_label.setWordWrap(True)
        layout.addWidget(self.fit_label)
        bottom = QHBoxLayout()
        self.status = QLabel("")
        bottom.addWidget(self.status, 1)
        self.close_button = QPushButton(_tr("Close"))
        self.close_button.setAccessibleName(_tr("Close the comparison"))
        self.close_button.clicked.connect(self.close)
        bottom.addWidget(self.close_button)
        layout.addLayout(bottom)
        self.render_timer = QTimer(self)
        self.render_timer.setSingleShot(True)
        self.render_timer.setInterval(RENDER_INTERVAL_MS)
        self.render_timer.timeout.connect(self.render)
        self.run_button.clicked.connect(self.request)
        self.stop_button.clicked.connect(self.stop)
        self.prompt.textChanged.connect(self._update_state)
        self._fill_sources((PaneSource(), PaneSource()))
        for pane in self.panes:
            pane.source.activated.connect(self._source_activated)

    # -- sources ---------------------------------------------------------------------------------
    @property
    def left_text(self) -> QTextBrowser:
        return self.panes[0].text

    @property
    def right_text(self) -> QTextBrowser:
        return self.panes[1].text

    def sources(self) -> tuple:
        return tuple(pane.chosen() for pane in self.panes)

    def _fill_sources(self, chosen: tuple) -> None:
        for pane, want in zip(self.panes, chosen):
            box = pane.source
            box.blockSignals(True)
            box.clear()
            box.addItem(_tr("Base model (adapter off)"), PaneSource())
            for name, path in self.adapters:
                box.addItem(_tr("Adapter: {name}").format(name=name), PaneSource("adapter", path))
            for name, spec in self.models:
                box.addItem(_tr("Model: {name}").format(name=name), PaneSource("model", spec))
            box.addItem(_tr("Another model…"), ANOTHER_MODEL)
            index = next((i for i in range(box.count()) if box.itemData(i) == want), 0)
            box.setCurrentIndex(index)
            box.blockSignals(False)
        self._sources_changed()

    def set_adapters(self, adapters: list[tuple[str, str]]) -> None:
        """The trained adapters of the loaded model, (name, folder): choices for either pane."""
        self.adapters = [(str(n), str(p)) for n, p in adapters]
        self._fill_sources(self.sources())

    def set_adapter(self, path: str, name: str = "") -> None:
        """Open on this adapter: the base model on the left, the adapter on the right. Other
        sources than before start with empty panes (no stale replies)."""
        path = str(path)
        if path not in (p for _, p in self.adapters):
            self.adapters.append((name or Path(path).name, path))
        self.set_sources((PaneSource(), PaneSource("adapter", path)))

    def set_sources(self, chosen: tuple) -> None:
        for source in chosen:
            if source.kind == "model" and source.path not in (s for _, s in self.models):
                self.models.append((Path(source.path).name or source.path, source.path))
        if tuple(chosen) != self.sources():
            self._clear()
            self.status.clear()
        self._fill_sources(tuple(chosen))

    def choose_model(self, pane: int, spec: str) -> None:
        """Set `pane` to another model (a GGUF file or a model folder); its fit is asked for."""
        chosen = list(self.sources())
        chosen[pane] = PaneSource("model", spec)
        self.set_sources(tuple(chosen))

    @Slot(int)
    def _source_activated(self, _index: int) -> None:
        pane = next(i for i, p in enumerate(self.panes) if p.source is self.sender())
        if self.panes[pane].source.currentData() == ANOTHER_MODEL:
            path, _ = QFileDialog.getOpenFileName(self, _tr("Choose a model"), "",
                                                  _tr("Models (*.gguf config.json)"))
            if path:  # a folder's config.json stands for the folder
                self.choose_model(pane, str(Path(path).parent) if Path(path).name == "config.json" else path)
            else:
                self._fill_sources(self._last_sources)
            return
        self._clear()
        self._sources_changed()

    def _sources_changed(self) -> None:
        self._last_sources = tuple(s or PaneSource() for s in self.sources())
        for source in self._last_sources:
            if source.kind == "model" and source.path not in self.fits:
                self.fits[source.path] = None
                self.fit_requested.emit(source.path)
        self._show_fit()
        self._update_state()

    def _show_fit(self) -> None:
        specs = [s.path for s in self._last_sources if s.kind == "model"]
        lines = []
        for spec in dict.fromkeys(specs):
            if self.fits.get(spec) is None:
                lines.append(_tr("Checking whether {name} fits beside the loaded model…").format(
                    name=Path(spec).name or spec))
            else:
                lines.append(self.fit_text[spec])
        self.fit_label.setText("\n".join(lines))

    @Slot(str, object)
    def show_fit(self, spec: str, estimate) -> None:
        """The config-only estimate for another model: it fits beside the loaded one, or not (with numbers)."""
        values = dict(name=estimate.name, need=_gib(estimate.memory_bytes), free=_gib(estimate.free_bytes))
        self.fits[spec] = bool(estimate.fits)
        if estimate.fits:
            self.fit_text[spec] = _tr("{name} fits beside the loaded model: it needs {need} GiB and {free} GiB is "
                                      "free. It is loaded for the comparison and released afterwards.").format(**values)
        else:
            self.fit_text[spec] = _tr("{name} does not fit beside the loaded model: it needs {need} GiB and {free} "
                                      "GiB is free. Compare adapters of the loaded model instead, or choose a "
                                      "smaller model.").format(**values)
        self._show_fit()
        self._update_state()

    @Slot(str, str)
    def show_fit_error(self, spec: str, message: str) -> None:
        self.fits[spec] = False
        self.fit_text[spec] = _tr("{name} cannot be compared: {message}").format(name=Path(spec).name or spec,
                                                                                message=message)
        self._show_fit()
        self._update_state()

    # -- running ---------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.key() == Qt.Key_Escape:  # a window of its own: Esc closes it, as in a dialog
            self.close()
            return
        super().keyPressEvent(event)

    def _clear(self) -> None:
        for pane in self.panes:
            pane.reply = ""
            pane.status.clear()
            pane.text.clear()

    def _ready(self) -> bool:
        chosen = self.sources()
        return all(s is not None for s in chosen) and all(
            self.fits.get(s.path) is True for s in chosen if s.kind == "model")

    def _update_state(self) -> None:
        self.run_button.setEnabled(not self.running and bool(self.prompt.toPlainText().strip()) and self._ready())
        self.stop_button.setEnabled(self.running)
        for pane in self.panes:
            pane.source.setEnabled(not self.running)

    @Slot()
    def request(self) -> None:
        prompt = self.prompt.toPlainText().strip()
        if not prompt or self.running or not self._ready():
            return
        self._clear()
        self.set_running(True)
        self.compare_requested.emit(prompt, self.seed.value(), self.sources())

    @Slot()
    def stop(self) -> None:
        if self.running:
            self.status.setText(_tr("Stopping…"))
            self.stop_requested.emit()

    @Slot(bool)
    def set_running(self, running: bool) -> None:
        self.running = running
        loading = running and any(s is not None and s.kind == "model" for s in self.sources())
        self.status.setText(_tr("Loading the other model, then generating…") if loading
                            else _tr("Generating…") if running else "")
        if not running:
            self.render()
        self._update_state()

    @Slot(str)
    def show_error(self, message: str) -> None:
        self.set_running(False)
        self.status.setText(_tr("Failed: {message}").format(message=message))

    @Slot(int, str)
    def append(self, pane: int, delta: str) -> None:
        self.panes[pane].reply += delta
        self.panes[pane].dirty = True
        if not self.render_timer.isActive():
            self.render_timer.start()

    @Slot(int, str)
    def show_text(self, pane: int, text: str) -> None:
        self.panes[pane].reply = text
        self.panes[pane].render()

    @Slot()
    def render(self) -> None:
        for pane in self.panes:
            if pane.dirty:
                pane.render()

    @Slot(object)
    def finish(self, replies: list) -> None:
        """Both panes are done: each says how its reply ended (Backend.compared())."""
        self.set_running(False)
        words = {"eos": _tr("finished"), "stop": _tr("finished"), "length": _tr("token limit"),
                 "cancelled": _tr("stopped")}
        for pane, reply in zip(self.panes, replies):
            stats = reply.get("stats", {})
            # no tokens/s: the panes take turns, so each one's rate says little about its source
            pane.status.setText(_tr("{tokens} tokens, {how}").format(
                tokens=stats.get("new_tokens", 0),
                how=words.get(reply.get("finish_reason", ""), reply.get("finish_reason", ""))))
