"""The settings drawer: device and context, replies (a preset, the length, and the sampling
fields under Advanced), appearance. Closed by default; the window opens it on demand.

The model itself and the conversation's system prompt are in the chat header (`chat_header`).
The presets are `chatapp.sampling_settings.PRESETS` (defined there only): picking one sets
the fields; editing a field shows the preset that matches, or "Custom".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel,
                               QScrollArea, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ..sampling_settings import PRESET_FIELDS, PRESETS, matching_preset, preset_values
from ..storage.settings import AppSettings
from .weights_picker import WeightsCombo

CUSTOM = ""  # the preset combo's data when no preset matches


def _tr(text: str) -> str:
    return QGuiApplication.translate("SettingsPanel", text)


def preset_label(name: str) -> str:
    """A preset's name in the user's words."""
    return {"precise": _tr("Precise"), "balanced": _tr("Balanced"), "creative": _tr("Creative")}.get(name, name)


def _number(value) -> str:
    """0.2 as "0.2", 40 as "40" (no trailing zeros)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


class SettingsPanel(QWidget):
    changed = Signal()  # any setting edited

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)

        device_box = QGroupBox(_tr("Device"))
        device_form = QFormLayout(device_box)
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
        # the default for models without their own choice in the model list; the memory shown is
        # the chosen model's
        self.weights = WeightsCombo()
        self.weights.setObjectName("defaultWeights")
        device_form.addRow(_tr("Weights"), self.weights)
        device_box.setToolTip(_tr("Used the next time a model is loaded."))
        layout.addWidget(device_box)

        replies_box = QGroupBox(_tr("Replies"))
        replies = QVBoxLayout(replies_box)
        top = QFormLayout()
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(preset_label(name), name)
        self.preset.addItem(_tr("Custom"), CUSTOM)
        self.preset.setAccessibleName(_tr("Sampling preset"))
        self.preset.setToolTip(_tr("Precise: focused, repeatable answers. Balanced: the default. "
                                   "Creative: more varied text."))
        self.max_new_tokens = QSpinBox(minimum=1, maximum=32768)
        self.max_new_tokens.setAccessibleName(_tr("Maximum new tokens"))
        top.addRow(_tr("Style"), self.preset)
        # what the loaded model recommends: used for each field left at the app default
        self.recommended = QLabel()
        self.recommended.setWordWrap(True)
        self.recommended.setToolTip(_tr("Used for each setting you leave at its default."))
        self.recommended.hide()
        top.addRow(self.recommended)
        top.addRow(_tr("Max new tokens"), self.max_new_tokens)
        # Qwen3 and models like it: the chat template's enable_thinking switch
        self.enable_thinking = QCheckBox(_tr("Think before answering"))
        self.enable_thinking.setAccessibleName(_tr("Let the model think before answering"))
        self.enable_thinking.setToolTip(_tr("For models that can reason first (such as Qwen3). The reasoning is "
                                            "shown collapsed above the answer and is not sent again with "
                                            "later messages."))
        top.addRow(self.enable_thinking)
        replies.addLayout(top)
        self.advanced_button = QToolButton()
        self.advanced_button.setText(_tr("Advanced"))
        self.advanced_button.setAccessibleName(_tr("Show the sampling settings"))
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.RightArrow)
        self.advanced_button.setAutoRaise(True)
        replies.addWidget(self.advanced_button)
        self.advanced = QWidget()
        form = QFormLayout(self.advanced)
        form.setContentsMargins(12, 0, 0, 0)
        self.temperature = self._double(0.0, 5.0, 0.05, _tr("Temperature"))
        self.top_p = self._double(0.01, 1.0, 0.01, _tr("Top-p"))
        self.min_p = self._double(0.0, 0.99, 0.01, _tr("Min-p"))
        self.repetition_penalty = self._double(0.5, 3.0, 0.01, _tr("Repetition penalty"))
        self.top_k = QSpinBox(minimum=0, maximum=1000)
        self.top_k.setSpecialValueText(_tr("Off"))
        self.top_k.setAccessibleName(_tr("Top-k"))
        self.seed = QSpinBox(minimum=-1, maximum=2**31 - 1)
        self.seed.setSpecialValueText(_tr("Random"))
        self.seed.setAccessibleName(_tr("Seed"))
        for label, widget in ((_tr("Temperature"), self.temperature), (_tr("Top-p"), self.top_p),
                              (_tr("Top-k"), self.top_k), (_tr("Min-p"), self.min_p),
                              (_tr("Repetition penalty"), self.repetition_penalty), (_tr("Seed"), self.seed)):
            form.addRow(label, widget)
        self.advanced.setVisible(False)
        replies.addWidget(self.advanced)
        layout.addWidget(replies_box)

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

        self.advanced_button.toggled.connect(self._show_advanced)
        self.preset.activated.connect(self._preset_chosen)
        for spin in self.sampling_fields().values():
            spin.valueChanged.connect(self._show_matching_preset)
        for spin in (self.temperature, self.top_p, self.min_p, self.repetition_penalty, self.top_k,
                     self.max_new_tokens, self.seed, self.context_len, self.threads):
            spin.valueChanged.connect(self.changed)
        for combo in (self.device, self.theme, self.language, self.weights):
            combo.currentIndexChanged.connect(self.changed)
        self.enable_thinking.toggled.connect(self.changed)

    def _double(self, low: float, high: float, step: float, name: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(minimum=low, maximum=high, singleStep=step, decimals=2)
        spin.setAccessibleName(name)
        return spin

    # -- the model's recommendation --------------------------------------------------------
    def show_recommended(self, values: dict) -> None:
        """One line under the style naming the loaded model's recommended sampling values
        (ModelInfo.sampling_defaults); hidden when it recommends none."""
        names = {"temperature": _tr("temperature"), "top_p": _tr("top-p"), "top_k": _tr("top-k"),
                 "min_p": _tr("min-p"), "repetition_penalty": _tr("repetition penalty"),
                 "repeat_last_n": _tr("repetition window")}
        parts = [f"{names[name]} {_number(values[name])}" for name in names if name in values]
        self.recommended.setText(_tr("This model recommends: {values}").format(values=_tr(", ").join(parts)))
        self.recommended.setVisible(bool(parts))

    # -- presets --------------------------------------------------------------------------
    def sampling_fields(self) -> dict[str, QWidget]:
        """The spin box of each setting a preset sets."""
        return {name: getattr(self, name) for name in PRESET_FIELDS}

    @Slot(bool)
    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)

    @Slot(int)
    def _preset_chosen(self, index: int) -> None:
        name = self.preset.itemData(index)
        if name == CUSTOM:
            return  # the fields stay as they are; editing them is what "Custom" means
        self.apply_preset(name)

    def apply_preset(self, name: str) -> None:
        """Set the sampling fields to preset `name` (one `changed`, not one per field)."""
        values = preset_values(name)
        self.blockSignals(True)
        for field_name, spin in self.sampling_fields().items():
            spin.setValue(values[field_name])
        self.blockSignals(False)
        self._show_matching_preset()
        self.changed.emit()

    @Slot()
    def _show_matching_preset(self) -> None:
        name = matching_preset({field_name: spin.value() for field_name, spin in self.sampling_fields().items()})
        self.preset.setCurrentIndex(self.preset.findData(CUSTOM if name is None else name))

    def preset_name(self) -> str:
        """The preset the fields match, "" for custom values."""
        return self.preset.currentData()

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
        self.enable_thinking.setChecked(s.enable_thinking)
        self.context_len.setValue(s.context_len)
        self.threads.setValue(s.threads)
        self.device.setCurrentIndex(max(0, self.device.findData(s.device)))
        self.weights.set_option(s.weights)
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        self.language.setCurrentIndex(max(0, self.language.findData(s.language)))
        self.blockSignals(False)
        self._show_matching_preset()

    def read_into(self, s: AppSettings) -> AppSettings:
        """The settings into `s` (not the model, not the system prompt: see the header)."""
        s.temperature = self.temperature.value()
        s.top_p = self.top_p.value()
        s.top_k = self.top_k.value()
        s.min_p = self.min_p.value()
        s.repetition_penalty = self.repetition_penalty.value()
        s.max_new_tokens = self.max_new_tokens.value()
        s.seed = self.seed.value()
        s.enable_thinking = self.enable_thinking.isChecked()
        s.context_len = self.context_len.value()
        s.threads = self.threads.value()
        s.device = self.device.currentData()
        s.weights = self.weights.option()
        s.theme = self.theme.currentData()
        s.language = self.language.currentData()
        return s


class SettingsDrawer(QWidget):
    """The settings panel in a scrolling drawer with a title and a Close button."""

    close_requested = Signal()

    def __init__(self, panel: SettingsPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDrawer")
        self.panel = panel
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 9, 9, 9)
        title_row = QHBoxLayout()
        title = QLabel(_tr("Settings"))
        title.setObjectName("drawerTitle")
        title_row.addWidget(title, 1)
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.setAccessibleName(_tr("Close the settings"))
        self.close_button.setToolTip(_tr("Close the settings"))
        self.close_button.clicked.connect(self.close_requested)
        title_row.addWidget(self.close_button)
        layout.addLayout(title_row)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(panel)
        layout.addWidget(scroll, 1)
