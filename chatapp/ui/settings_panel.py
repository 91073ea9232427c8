"""Right pane: the model (pick, open, load with progress) and generation settings.

It shows what the `ModelController` it follows does (`follow`), and says what the user asks
for by its signals; it never talks to the worker.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from ..storage.settings import AppSettings


def _tr(text: str) -> str:
    return QGuiApplication.translate("SettingsPanel", text)


class SettingsPanel(QWidget):
    load_requested = Signal(str)  # model spec
    selection_changed = Signal(str)  # model spec chosen in the list (not loaded yet)
    changed = Signal()  # any generation setting edited
    cancel_load_requested = Signal()
    system_prompt_edited = Signal(str)  # the user edited the (open conversation's) system prompt

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)

        model_box = QGroupBox(_tr("Model"))
        model_layout = QVBoxLayout(model_box)
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName(_tr("Model"))
        self.model_combo.setEditable(False)
        model_layout.addWidget(self.model_combo)
        buttons = QHBoxLayout()
        self.open_file_button = QPushButton(_tr("Open GGUF…"))
        self.open_file_button.setAccessibleName(_tr("Open a GGUF model file"))
        self.open_folder_button = QPushButton(_tr("Open folder…"))
        self.open_folder_button.setAccessibleName(_tr("Open a Hugging Face model folder"))
        self.load_button = QPushButton(_tr("Load"))
        self.load_button.setAccessibleName(_tr("Load the selected model"))
        buttons.addWidget(self.open_file_button)
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.load_button)
        model_layout.addLayout(buttons)
        self.model_status = QLabel(_tr("No model loaded"))
        self.model_status.setWordWrap(True)
        self.model_status.setObjectName("modelStatus")
        model_layout.addWidget(self.model_status)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setObjectName("modelEstimate")
        model_layout.addWidget(self.estimate_label)
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 100)
        self.load_progress.setVisible(False)
        self.cancel_load_button = QPushButton(_tr("Cancel"))
        self.cancel_load_button.setAccessibleName(_tr("Cancel loading the model"))
        self.cancel_load_button.setVisible(False)
        self.cancel_load_button.clicked.connect(self.cancel_load_requested)
        loading_row = QHBoxLayout()
        loading_row.addWidget(self.load_progress, 1)
        loading_row.addWidget(self.cancel_load_button)
        model_layout.addLayout(loading_row)
        device_form = QFormLayout()
        self.device = QComboBox()
        for value, label in (("auto", _tr("Automatic")), ("cpu", "CPU"), ("cuda", "CUDA"), ("mps", "Apple MPS")):
            self.device.addItem(label, value)
        self.device.setAccessibleName(_tr("Device"))
        self.context_len = QSpinBox(minimum=256, maximum=131072, singleStep=256)
        self.context_len.setAccessibleName(_tr("Context length"))
        self.threads = QSpinBox(minimum=0, maximum=256)
        self.threads.setSpecialValueText(_tr("Automatic"))
        self.threads.setAccessibleName(_tr("CPU threads"))
        device_form.addRow(_tr("Device"), self.device)
        device_form.addRow(_tr("Context length"), self.context_len)
        device_form.addRow(_tr("CPU threads"), self.threads)
        model_layout.addLayout(device_form)
        layout.addWidget(model_box)

        prompt_box = QGroupBox(_tr("System prompt"))
        prompt_layout = QVBoxLayout(prompt_box)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setAccessibleName(_tr("System prompt"))
        self.system_prompt.setMaximumHeight(90)
        prompt_layout.addWidget(self.system_prompt)
        layout.addWidget(prompt_box)

        sampling_box = QGroupBox(_tr("Sampling"))
        form = QFormLayout(sampling_box)
        self.temperature = self._double(0.0, 5.0, 0.05, _tr("Temperature"))
        self.top_p = self._double(0.01, 1.0, 0.01, _tr("Top-p"))
        self.min_p = self._double(0.0, 0.99, 0.01, _tr("Min-p"))
        self.repetition_penalty = self._double(0.5, 3.0, 0.01, _tr("Repetition penalty"))
        self.top_k = QSpinBox(minimum=0, maximum=1000)
        self.top_k.setSpecialValueText(_tr("Off"))
        self.top_k.setAccessibleName(_tr("Top-k"))
        self.max_new_tokens = QSpinBox(minimum=1, maximum=32768)
        self.max_new_tokens.setAccessibleName(_tr("Maximum new tokens"))
        self.seed = QSpinBox(minimum=-1, maximum=2**31 - 1)
        self.seed.setSpecialValueText(_tr("Random"))
        self.seed.setAccessibleName(_tr("Seed"))
        for label, widget in ((_tr("Temperature"), self.temperature), (_tr("Top-p"), self.top_p),
                              (_tr("Top-k"), self.top_k), (_tr("Min-p"), self.min_p),
                              (_tr("Repetition penalty"), self.repetition_penalty),
                              (_tr("Max new tokens"), self.max_new_tokens), (_tr("Seed"), self.seed)):
            form.addRow(label, widget)
        layout.addWidget(sampling_box)

        look_box = QGroupBox(_tr("Appearance"))
        look = QFormLayout(look_box)
        self.theme = QComboBox()
        for value, label in (("system", _tr("Follow the system")), ("light", _tr("Light")), ("dark", _tr("Dark"))):
            self.theme.addItem(label, value)
        self.theme.setAccessibleName(_tr("Theme"))
        self.language = QComboBox()
        # each language in its own name, so a user who cannot read the current one finds theirs
        for value, label in (("", _tr("Follow the system")), ("en", "English"), ("zh_CN", "简体中文")):
            self.language.addItem(label, value)
        self.language.setAccessibleName(_tr("Language"))
        self.language.setToolTip(_tr("Takes effect the next time chatapp starts."))
        look.addRow(_tr("Theme"), self.theme)
        look.addRow(_tr("Language"), self.language)
        layout.addWidget(look_box)
        layout.addStretch(1)

        self.open_file_button.clicked.connect(self._open_file)
        self.open_folder_button.clicked.connect(self._open_folder)
        self.load_button.clicked.connect(lambda: self.load_requested.emit(self.model_combo.currentData() or ""))
        self.model_combo.currentIndexChanged.connect(
            lambda _i: self.selection_changed.emit(self.model_combo.currentData() or ""))
        for spin in (self.temperature, self.top_p, self.min_p, self.repetition_penalty, self.top_k,
                     self.max_new_tokens, self.seed, self.context_len, self.threads):
            spin.valueChanged.connect(self.changed)
        # the system prompt belongs to the open conversation, not to these settings
        self.system_prompt.textChanged.connect(lambda: self.system_prompt_edited.emit(self.system_prompt.toPlainText()))
        for combo in (self.device, self.theme, self.language):
            combo.currentIndexChanged.connect(self.changed)

    def _double(self, low: float, high: float, step: float, name: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(minimum=low, maximum=high, singleStep=step, decimals=2)
        spin.setAccessibleName(name)
        return spin

    # -- models ---------------------------------------------------------------------------
    def set_models(self, entries: list[tuple[str, str]], current: str) -> None:
        """entries: (label, spec)."""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for label, spec in entries:
            self.model_combo.addItem(label, spec)
        index = self.model_combo.findData(current)
        if index < 0 and current:
            self.model_combo.addItem(current, current)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(max(index, 0))
        self.model_combo.blockSignals(False)

    def model_name(self, spec: str) -> str:
        """The name the model list shows for `spec` (never the internal "default")."""
        index = self.model_combo.findData(spec)
        if index >= 0:
            return self.model_combo.itemText(index)
        return Path(spec).name or spec

    @staticmethod
    def memory_text(info) -> str:
        """The memory a model needs (a ModelInfo or ModelEstimate), in the UI's language and in
        GiB, the one unit of the app ("0.78 GiB (weights 0.50, ...)")."""
        parts = info.memory_parts
        if not parts:
            return info.memory
        gib = 1024**3
        return _tr("{total:.2f} GiB (weights {weights:.2f}, KV cache {kv:.2f}, working memory {work:.2f})").format(
            total=parts["total"] / gib, weights=parts["weights"] / gib, kv=parts["kv_cache"] / gib,
            work=parts["working"] / gib)

    def show_estimate(self, spec: str, estimate) -> None:
        """The memory a load would need (a ModelEstimate), shown before loading (red when it will not fit)."""
        if spec != (self.model_combo.currentData() or ""):
            return  # the user has moved on to another model
        text = _tr("Before loading: {name}, {params:.0f}M parameters, needs about {memory}").format(
            name=estimate.name, params=estimate.n_params / 1e6, memory=self.memory_text(estimate))
        if estimate.free_bytes is not None:
            text += _tr("; {free:.1f} GiB free").format(free=estimate.free_bytes / 1024**3)
        if not estimate.fits:
            text += _tr(". It will not fit: choose a shorter context length or a smaller model.")
            self.estimate_label.setStyleSheet("color: #d33;")
        else:
            self.estimate_label.setStyleSheet("")
        self.estimate_label.setText(text)

    def show_estimate_error(self, spec: str, message: str) -> None:
        if spec == (self.model_combo.currentData() or ""):
            self.estimate_label.setStyleSheet("color: #d33;")
            self.estimate_label.setText(_tr("This model cannot be opened: {message}").format(message=message))

    def _choose(self, spec: str) -> None:
        index = self.model_combo.findData(spec)
        if index < 0:
            self.model_combo.addItem(spec, spec)
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
        self.open_file_button.setEnabled(not loading)
        self.open_folder_button.setEnabled(not loading)
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
        if self._model.info is None or spec != self._model.settings.model:  # not once that model is loaded
            self.show_estimate(spec, estimate)

    @Slot(object)
    def _on_loaded(self, info) -> None:
        self.set_loading(False)
        self.estimate_label.clear()  # it was for before loading; the real numbers follow
        self.estimate_label.setStyleSheet("")
        status = _tr("{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. "
                     "Memory: {memory}").format(name=info.name, params=info.n_params / 1e6, dtype=info.dtype,
                                                device=info.device, ctx=info.context_len, secs=info.load_s,
                                                memory=self.memory_text(info))
        if info.adapter:
            status += " " + _tr("Adapter in use: {name}.").format(name=Path(info.adapter).name)
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

    # -- the system prompt (the open conversation's) ------------------------------------------
    def show_system_prompt(self, text: str) -> None:
        """Show the open conversation's prompt without it counting as an edit."""
        if self.system_prompt.toPlainText() != text:
            self.system_prompt.blockSignals(True)
            self.system_prompt.setPlainText(text)
            self.system_prompt.blockSignals(False)

    def current_spec(self) -> str:
        """The model chosen in the list (not necessarily loaded)."""
        return self.model_combo.currentData() or ""

    # -- settings -------------------------------------------------------------------------
    def apply(self, s: AppSettings) -> None:
        self.blockSignals(True)
        self.temperature.setValue(s.temperature)
        self.top_p.setValue(s.top_p)
        self.top_k.setValue(s.top_k)
        self.min_p.setValue(s.min_p)
        self.repetition_penalty.setValue(s.repetition_penalty)
        self.max_new_tokens.setValue(s.max_new_tokens)
        self.seed.setValue(s.seed)
        self.context_len.setValue(s.context_len)
        self.threads.setValue(s.threads)
        self.system_prompt.setPlainText(s.system_prompt)
        self.device.setCurrentIndex(max(0, self.device.findData(s.device)))
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        self.language.setCurrentIndex(max(0, self.language.findData(s.language)))
        self.blockSignals(False)

    def read_into(self, s: AppSettings) -> AppSettings:
        """The generation settings into `s` (not the system prompt: see the window)."""
        s.temperature = self.temperature.value()
        s.top_p = self.top_p.value()
        s.top_k = self.top_k.value()
        s.min_p = self.min_p.value()
        s.repetition_penalty = self.repetition_penalty.value()
        s.max_new_tokens = self.max_new_tokens.value()
        s.seed = self.seed.value()
        s.context_len = self.context_len.value()
        s.threads = self.threads.value()
        s.device = self.device.currentData()
        s.theme = self.theme.currentData()
        s.language = self.language.currentData()
        return s
