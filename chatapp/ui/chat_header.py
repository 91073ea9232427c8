"""The bar above the conversation: the model (pick with its memory estimate, its weights option
with each option's memory and fit, open, load with progress) and the open conversation's own system prompt, plus the buttons that show the
conversation list and the settings drawer.

It shows what the `ModelController` it follows does (`follow`) and says what the user asks for
by its signals; it never talks to the worker.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QPlainTextEdit, QProgressBar,
                               QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from .weights_picker import WeightsCombo

GIB = 1024**3
LABEL_ROLE = Qt.UserRole + 1  # a model's plain name (the item's text adds its estimate)


def _tr(text: str) -> str:
    return QGuiApplication.translate("ChatHeader", text)


def memory_text(info) -> str:
    """The memory a model needs (a ModelInfo or ModelEstimate), in the UI's language and in
    GiB, the one unit of the app ("0.78 GiB (weights 0.50, ...)")."""
    parts = info.memory_parts
    if not parts:
        return info.memory
    return _tr("{total:.2f} GiB (weights {weights:.2f}, KV cache {kv:.2f}, working memory {work:.2f})").format(
        total=parts["total"] / GIB, weights=parts["weights"] / GIB, kv=parts["kv_cache"] / GIB,
        work=parts["working"] / GIB)


def prompt_summary(text: str, width: int = 24) -> str:
    """The system prompt's first line, shortened (at a word where there is one) for a button."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= width:
        return line
    cut = line[:width - 1]
    if " " in cut[width // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


class ModelCombo(QComboBox):
    """A combo that says when its list is about to open (the window then estimates every model)."""

    about_to_show = Signal()

    def showPopup(self) -> None:  # noqa: N802 (Qt naming)
        self.about_to_show.emit()
        super().showPopup()


class ChatHeader(QWidget):
    load_requested = Signal(str)  # model spec
    selection_changed = Signal(str)  # model spec chosen in the list (not loaded yet)
    cancel_load_requested = Signal()
    system_prompt_edited = Signal(str)  # the user edited the open conversation's system prompt
    estimates_wanted = Signal(list)  # specs the list shows without an estimate yet

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatHeader")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        row = QHBoxLayout()
        self.list_button = QToolButton()  # its action (show/hide the list) is set by the window
        self.list_button.setObjectName("headerToggle")
        row.addWidget(self.list_button)
        self.model_combo = ModelCombo()
        self.model_combo.setAccessibleName(_tr("Model"))
        self.model_combo.setToolTip(_tr("The model to chat with, and the memory it needs"))
        self.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.model_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        row.addWidget(self.model_combo, 1)
        self.weights_combo = WeightsCombo()  # this model's weights option (saved per model)
        self.weights_combo.setObjectName("modelWeights")
        row.addWidget(self.weights_combo)
        self.load_button = QPushButton(_tr("Load"))
        self.load_button.setAccessibleName(_tr("Load the selected model"))
        row.addWidget(self.load_button)
        self.open_button = QToolButton()
        self.open_button.setText(_tr("Open…"))
        self.open_button.setAccessibleName(_tr("Open another model"))
        self.open_button.setPopupMode(QToolButton.InstantPopup)
        open_menu = QMenu(self.open_button)
        self.open_file_action = open_menu.addAction(_tr("Open GGUF…"), self._open_file)
        self.open_folder_action = open_menu.addAction(_tr("Open Hugging Face folder…"), self._open_folder)
        self.open_button.setMenu(open_menu)
        row.addWidget(self.open_button)
        # an action, so the window can put it in the Chat menu with a shortcut; the button shows
        # its icon text (the prompt itself), the menu its text
        self.prompt_action = QAction(_tr("System prompt"), self)
        self.prompt_action.setCheckable(True)
        self.prompt_button = QToolButton()
        self.prompt_button.setDefaultAction(self.prompt_action)
        self.prompt_button.setAccessibleName(_tr("Show the conversation's system prompt"))
        self.prompt_button.setToolButtonStyle(Qt.ToolButtonTextOnly)
        row.addWidget(self.prompt_button)
        self.settings_button = QToolButton()  # its action (the drawer) is set by the window
        self.settings_button.setObjectName("headerToggle")
        row.addWidget(self.settings_button)
        layout.addLayout(row)

        self.model_status = QLabel(_tr("No model loaded"))
        self.model_status.setWordWrap(True)
        self.model_status.setObjectName("modelStatus")
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setObjectName("modelEstimate")
        self.estimate_label.hide()
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 100)
        self.load_progress.setMaximumHeight(16)
        self.load_progress.setVisible(False)
        self.cancel_load_button = QPushButton(_tr("Cancel"))
        self.cancel_load_button.setAccessibleName(_tr("Cancel loading the model"))
        self.cancel_load_button.setVisible(False)
        self.cancel_load_button.clicked.connect(self.cancel_load_requested)
        status_row = QHBoxLayout()
        status_row.addWidget(self.model_status, 1)
        status_row.addWidget(self.load_progress)
        status_row.addWidget(self.cancel_load_button)
        layout.addLayout(status_row)
        layout.addWidget(self.estimate_label)

        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setAccessibleName(_tr("System prompt"))
        self.system_prompt.setPlaceholderText(_tr("How the model should answer in this conversation"))
        self.system_prompt.setMaximumHeight(80)
        self.system_prompt.setVisible(False)
        layout.addWidget(self.system_prompt)

        self.load_button.clicked.connect(lambda: self.load_requested.emit(self.current_spec()))
        self.model_combo.currentIndexChanged.connect(lambda _i: self.selection_changed.emit(self.current_spec()))
        self.model_combo.about_to_show.connect(self._want_estimates)
        self.prompt_action.toggled.connect(self._show_prompt_editor)
        self.system_prompt.textChanged.connect(self._prompt_edited)
        self._estimated: set[str] = set()
        self._model = None
        self._update_prompt_button()

    # -- the system prompt (the open conversation's) ------------------------------------------
    def show_system_prompt(self, text: str) -> None:
        """Show the open conversation's prompt without it counting as an edit."""
        if self.system_prompt.toPlainText() != text:
            self.system_prompt.blockSignals(True)
            self.system_prompt.setPlainText(text)
            self.system_prompt.blockSignals(False)
        self._update_prompt_button()

    def _prompt_edited(self) -> None:
        self._update_prompt_button()
        self.system_prompt_edited.emit(self.system_prompt.toPlainText())

    @Slot(bool)
    def _show_prompt_editor(self, shown: bool) -> None:
        self.system_prompt.setVisible(shown)
        if shown:
            self.system_prompt.setFocus()

    def _update_prompt_button(self) -> None:
        text = self.system_prompt.toPlainText()
        summary = prompt_summary(text).replace("&", "&&")  # a "&" in the prompt is text, not a mnemonic
        self.prompt_action.setIconText(_tr("System prompt: {summary}").format(summary=summary) if summary
                                       else _tr("System prompt: none"))
        self.prompt_action.setToolTip(text or _tr("This conversation has no system prompt."))

    # -- models ---------------------------------------------------------------------------
    def set_models(self, entries: list[tuple[str, str]], current: str) -> None:
        """entries: (label, spec)."""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self._estimated.clear()
        for label, spec in entries:
            self._add_model(label, spec)
        index = self.model_combo.findData(current)
        if index < 0 and current:
            self._add_model(Path(current).name or current, current)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(max(index, 0))
        self.model_combo.blockSignals(False)
        self.show_weights_choice()

    def _add_model(self, label: str, spec: str) -> None:
        self.model_combo.addItem(label, spec)
        self.model_combo.setItemData(self.model_combo.count() - 1, label, LABEL_ROLE)

    def model_name(self, spec: str) -> str:
        """The name the model list shows for `spec` (never the internal "default")."""
        index = self.model_combo.findData(spec)
        if index >= 0:
            return self.model_combo.itemData(index, LABEL_ROLE) or self.model_combo.itemText(index)
        return Path(spec).name or spec

    def current_spec(self) -> str:
        """The model chosen in the list (not necessarily loaded)."""
        return self.model_combo.currentData() or ""

    def forget_estimates(self) -> None:
        """The device or context changed: every estimate is asked again when wanted."""
        self._estimated.clear()

    def _want_estimates(self) -> None:
        specs = [self.model_combo.itemData(i) for i in range(self.model_combo.count())]
        wanted = [spec for spec in specs if spec and spec not in self._estimated]
        if wanted:
            self._estimated.update(wanted)
            self.estimates_wanted.emit(wanted)

    def label_estimate(self, spec: str, estimate) -> None:
        """The model list shows the memory `spec` needs beside its name."""
        self._estimated.add(spec)
        index = self.model_combo.findData(spec)
        if index < 0:
            return
        name = self.model_combo.itemData(index, LABEL_ROLE) or spec
        memory = estimate.memory_bytes / GIB
        text = (_tr("{name} · {memory:.2f} GiB").format(name=name, memory=memory) if estimate.fits
                else _tr("{name} · {memory:.2f} GiB, will not fit").format(name=name, memory=memory))
        self.model_combo.setItemText(index, text)
        self.model_combo.setItemData(index, memory_text(estimate), Qt.ToolTipRole)

    def show_estimate(self, spec: str, estimate) -> None:
        """The memory a load would need (a ModelEstimate), shown before loading (red when it will not fit)."""
        if spec != self.current_spec():
            return  # the user has moved on to another model
        text = _tr("Before loading: {name}, {params:.0f}M parameters, needs about {memory}").format(
            name=estimate.name, params=estimate.n_params / 1e6, memory=memory_text(estimate))
        if estimate.free_bytes is not None:
            text += _tr("; {free:.1f} GiB free").format(free=estimate.free_bytes / GIB)
        if not estimate.fits:
            text += _tr(". It will not fit: choose a shorter context length or a smaller model.")
            self.estimate_label.setStyleSheet("color: #d33;")
        else:
            self.estimate_label.setStyleSheet("")
        self.estimate_label.setText(text)
        self.estimate_label.show()

    def show_estimate_error(self, spec: str, message: str) -> None:
        if spec == self.current_spec():
            self.estimate_label.setStyleSheet("color: #d33;")
            self.estimate_label.setText(_tr("This model cannot be opened: {message}").format(message=message))
            self.estimate_label.show()

    def _clear_estimate(self) -> None:
        self.estimate_label.clear()
        self.estimate_label.setStyleSheet("")
        self.estimate_label.hide()

    def _choose(self, spec: str) -> None:
        index = self.model_combo.findData(spec)
        if index < 0:
            self._add_model(Path(spec).name or spec, spec)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(index)
        self.load_requested.emit(spec)

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, _tr("Open GGUF model"), "", _tr("GGUF models (*.gguf)"))
        if path:
            self._choose(path)

    def _open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, _tr("Open Hugging Face model folder"))
        if path:
            self._choose(path)

    def set_loading(self, loading: bool, stage: str = "", fraction: float = 0.0) -> None:
        """Show a load under way: `stage` in words and its `fraction` done (below 0: not known)."""
        self.load_progress.setVisible(loading)
        self.cancel_load_button.setVisible(loading)
        self.cancel_load_button.setEnabled(loading)
        self.load_button.setEnabled(not loading)
        self.open_button.setEnabled(not loading)
        if not loading:
            self.load_progress.setRange(0, 100)
        elif fraction < 0:  # a stage that does not say how far it is: a busy bar
            self.load_progress.setRange(0, 0)
            self.load_progress.setFormat(stage)
        else:
            self.load_progress.setRange(0, 100)
            self.load_progress.setValue(int(fraction * 100))
            self.load_progress.setFormat(f"{stage} %p%")

    # -- following the model controller ------------------------------------------------
    def follow(self, model) -> None:
        """Show what the ModelController does: loading, progress, the loaded model, estimates."""
        self._model = model
        model.loading.connect(self._on_loading)
        model.progress.connect(self._on_progress)
        model.loaded.connect(self._on_loaded)
        model.load_failed.connect(self._on_failed)
        model.load_cancelled.connect(self._on_cancelled)
        model.estimated.connect(self._on_estimated)
        model.estimate_failed.connect(self.show_estimate_error)
        self.cancel_load_requested.connect(self._on_cancel_requested)
        self.estimates_wanted.connect(lambda specs: [model.estimate(spec) for spec in specs])
        self.weights_combo.chosen.connect(self._on_weights_chosen)
        self.selection_changed.connect(self.show_weights_choice)
        self.show_weights_choice()

    def show_weights_choice(self, _spec: str = "") -> None:
        """The weights combo follows the chosen model: its saved option, no fit until estimated."""
        if self._model is not None:
            self.weights_combo.set_option(self._model.weights_for(self.current_spec()))
            self.weights_combo.clear_fit()

    @Slot(str)
    def _on_weights_chosen(self, option: str) -> None:
        self._model.set_weights(self.current_spec(), option)

    @Slot(str, str)
    def _on_loading(self, _spec: str, name: str) -> None:
        self.set_loading(True, _tr("Loading"), -1.0)
        self.model_status.setText(_tr("Loading {name}…").format(name=name))

    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        self.set_loading(True, stage, fraction)

    @Slot()
    def _on_cancel_requested(self) -> None:
        if self._model.loading_spec is not None:
            self.cancel_load_button.setEnabled(False)
            self.model_status.setText(_tr("Cancelling…"))

    @Slot(str, object)
    def _on_estimated(self, spec: str, estimate) -> None:
        self.label_estimate(spec, estimate)
        if spec == self.current_spec() and estimate.options:
            self.weights_combo.show_fit(estimate.options, estimate.auto_weights)
        if self._model.info is None or spec != self._model.settings.model:  # not once that model is loaded
            self.show_estimate(spec, estimate)

    @Slot(object)
    def _on_loaded(self, info) -> None:
        self.set_loading(False)
        self._clear_estimate()  # it was for before loading; the real numbers follow
        status = _tr("{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. "
                     "Memory: {memory}").format(name=info.name, params=info.n_params / 1e6, dtype=info.dtype,
                                                device=info.device, ctx=info.context_len, secs=info.load_s,
                                                memory=memory_text(info))
        if info.adapter:
            status += "\n" + _tr("Adapter in use: {name}.").format(name=Path(info.adapter).name)  # a line of its own
        self.model_status.setText(status)

    @Slot(str)
    def _on_cancelled(self, spec: str) -> None:
        self.set_loading(False)
        self.model_status.setText(_tr("Loading {name} was cancelled.").format(name=self._model.display_name(spec))
                                  + self._model.kept_sentence())

    @Slot(str, str)
    def _on_failed(self, spec: str, message: str) -> None:
        self.set_loading(False)
        self.model_status.setText(_tr("Could not load {spec}: {message}").format(
            spec=self._model.display_name(spec), message=message) + self._model.kept_sentence())
