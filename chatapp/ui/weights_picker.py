"""The weights choice (auto / float32 / bf16 / float16 / int8 / int4) as a combo box that shows,
beside each option, the memory it needs and whether that fits this machine.

The numbers are the worker's config-only estimate (`ModelEstimate.options`, from
`engine.weights_option.fit_table`); this module only words and colours them. Used per model in
the chat header and as the default for every model in the settings drawer.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import QComboBox, QWidget

from ..storage.settings import CHOICES

GIB = 1024**3
WEIGHT_OPTIONS = CHOICES["weights"]  # "auto" first
FIT_COLOURS = {"tight": "#c77c00", "does not fit": "#d33"}  # "fits" keeps the palette's colour


def _tr(text: str) -> str:
    return QGuiApplication.translate("WeightsPicker", text)


def option_name(option: str) -> str:
    """A weights option in the user's words."""
    return {"auto": _tr("Automatic"), "float32": _tr("float32 (exact)"), "bf16": "bf16", "float16": "float16",
            "int8": _tr("int8 (compact)"), "int4": _tr("int4 (smallest)")}.get(option, option)


def fit_name(word: str) -> str:
    """engine.weights_option.FIT_WORDS in the user's words."""
    return {"fits": _tr("fits"), "tight": _tr("tight"), "does not fit": _tr("does not fit")}.get(word, word)


def option_text(option: str, options: dict, auto_pick: str = "") -> str:
    """"int8 (compact) · 0.15 GiB · fits"; for "auto", what it picks ("Automatic: int8 · ...");
    the name alone when `options` has no estimate for it."""
    shown = auto_pick if option == "auto" else option
    entry = options.get(shown)
    name = (_tr("Automatic: {option}").format(option=auto_pick) if option == "auto" and auto_pick
            else option_name(option))
    if not entry:
        return name
    return _tr("{name} · {memory:.2f} GiB · {fit}").format(name=name, memory=entry["bytes"] / GIB,
                                                           fit=fit_name(entry["fit"]))


def weights_status(info, automatic: bool) -> str:
    """The status bar's words for a loaded model's weights (ModelInfo): the option, and whether
    "auto" picked it (the reason itself goes in the tooltip and a message)."""
    if not info.weights:
        return ""
    if automatic:
        return _tr("Weights: {option} (automatic)").format(option=info.weights)
    return _tr("Weights: {option}").format(option=info.weights)


class WeightsCombo(QComboBox):
    """The six weights options; `chosen` says which one the user picked (not set_option)."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        for option in WEIGHT_OPTIONS:
            self.addItem(option_name(option), option)
        self.setAccessibleName(_tr("Weights in memory"))
        self.setToolTip(_tr("How the weights are held in memory: float32 is exact; int8 and int4 need "
                            "a quarter to a sixth of the memory and change the answers slightly. "
                            "Used the next time the model is loaded."))
        self.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.options: dict = {}  # the estimate shown: {option: {"bytes", "fit"}}
        self.activated.connect(self._activated)

    def option(self) -> str:
        return self.currentData()

    def set_option(self, option: str) -> None:
        """Show `option` as chosen (an unknown one shows auto); no `chosen` signal."""
        self.setCurrentIndex(max(0, self.findData(option)))

    def show_fit(self, options: dict, auto_pick: str = "") -> None:
        """Each option's memory and fit (ModelEstimate.options; auto_pick: what auto resolves to)."""
        self.options = dict(options)
        for index in range(self.count()):
            option = self.itemData(index)
            self.setItemText(index, option_text(option, options, auto_pick))
            entry = options.get(auto_pick if option == "auto" else option)
            colour = FIT_COLOURS.get(entry["fit"]) if entry else None
            self.setItemData(index, QBrush(QColor(colour)) if colour else None, Qt.ForegroundRole)

    def clear_fit(self) -> None:
        """Names only (the model changed; its estimate comes later)."""
        self.show_fit({})

    def fit_of(self, option: str) -> str:
        """The fit word shown for `option`, "" when not estimated."""
        entry = self.options.get(option)
        return entry["fit"] if entry else ""

    @Slot(int)
    def _activated(self, index: int) -> None:
        self.chosen.emit(self.itemData(index))
