"""The Train tab's method and settings: a form whose fields are options of `chatapp train`.

Each widget starts at the options table's default (training/protocol.py) and `job()` turns the
form into a `TrainJob`, so the form, the command line and the job cannot drift apart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QSpinBox, QWidget

from ...training.protocol import DEFAULT_LR, LORA_PRESETS, TrainJob, option_default

SAVE_EVERY = 100  # the window checkpoints as it goes, so that Resume has something to continue


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


class SettingsForm(QGroupBox):
    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(_tr("Method and settings"), parent)
        form = QFormLayout(self)
        d = option_default
        self.base_label = QLabel("")
        self.base_weights = "float"  # the base's weights while LoRA trains (TrainJob.weights)
        self.base_label.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(_tr("adapter"))
        self.method = QComboBox()
        for label, value in ((_tr("LoRA (recommended)"), "lora"), (_tr("Full fine-tune"), "full"),
                             (_tr("From scratch"), "scratch")):
            self.method.addItem(label, value)
        self.method.setCurrentIndex(self.method.findData(d("method")))
        # 0 on the number fields below means the table's "auto": sized by the run or its recipe.
        self.epochs = QDoubleSpinBox(minimum=0.0, maximum=1000, singleStep=0.5, decimals=1, value=0.0)
        self.epochs.setSpecialValueText(_tr("Auto (sized to the documents)"))
        self.max_steps = QSpinBox(minimum=0, maximum=10_000_000, value=0)
        self.max_steps.setSpecialValueText(_tr("From epochs"))
        self.lr = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=1e-5, decimals=6, value=0.0)
        self.lr.setSpecialValueText(_tr("Auto (by recipe)"))
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=d("batch_size"))
        self.grad_accum = QSpinBox(minimum=1, maximum=4096, value=d("grad_accum"))
        self.block_size = QSpinBox(minimum=16, maximum=131072, singleStep=64, value=d("block_size"))
        self.lora_rank = QSpinBox(minimum=0, maximum=1024, value=d("lora_rank") or 0)
        self.lora_rank.setSpecialValueText(_tr("Auto (by recipe)"))
        self.lora_alpha = QSpinBox(minimum=0, maximum=4096, value=int(d("lora_alpha") or 0))
        self.lora_alpha.setSpecialValueText(_tr("Auto (by recipe)"))
        self.lora_targets = QComboBox()
        self.lora_targets.addItem(_tr("Auto (by recipe)"), None)
        for label, preset in ((_tr("Attention q, v (fastest)"), "qv"),
                              (_tr("All attention (q, k, v, o)"), "attention"),
                              (_tr("All linear layers (learns most)"), "all-linear")):
            self.lora_targets.addItem(label, list(LORA_PRESETS[preset]))
        self.lora_targets.setToolTip(_tr("Which layers get an adapter: more layers learn more from the "
                                         "documents, train slower, and overfit sooner"))
        self.eval_every = QSpinBox(minimum=0, maximum=1_000_000, value=d("eval_every"))
        self.eval_every.setSpecialValueText(_tr("Before and after only"))
        self.early_stop = QSpinBox(minimum=0, maximum=1000, value=d("early_stop"))
        self.early_stop.setSpecialValueText(_tr("Never"))
        self.early_stop.setSuffix(_tr(" evaluations"))
        self.early_stop.setToolTip(_tr("Stop when this many evaluations in a row find no lower held-out "
                                       "perplexity, and keep the weights of the best one"))
        self.save_every = QSpinBox(minimum=0, maximum=1_000_000, value=SAVE_EVERY)
        self.save_every.setSpecialValueText(_tr("At the end only"))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=d("seed"))
        self.widgets = [self.name_edit, self.method, self.epochs, self.max_steps, self.lr, self.batch_size,
                        self.grad_accum, self.block_size, self.lora_rank, self.lora_alpha, self.lora_targets,
                        self.eval_every, self.early_stop, self.save_every, self.seed]
        form.addRow(_tr("Base model"), self.base_label)
        for label, widget in ((_tr("Name"), self.name_edit), (_tr("Method"), self.method),
                              (_tr("Epochs"), self.epochs), (_tr("Max steps"), self.max_steps),
                              (_tr("Learning rate"), self.lr), (_tr("Batch size"), self.batch_size),
                              (_tr("Gradient accumulation"), self.grad_accum),
                              (_tr("Block size (tokens)"), self.block_size), (_tr("LoRA rank"), self.lora_rank),
                              (_tr("LoRA alpha"), self.lora_alpha), (_tr("LoRA layers"), self.lora_targets),
                              (_tr("Evaluate every (steps)"), self.eval_every),
                              (_tr("Stop if no gain for"), self.early_stop),
                              (_tr("Checkpoint every (steps)"), self.save_every), (_tr("Seed"), self.seed)):
            widget.setAccessibleName(label)
            form.addRow(label, widget)
        self._method = self.method.currentData()
        self.method.currentIndexChanged.connect(self._method_changed)
        self.max_steps.valueChanged.connect(self.set_locked_state)
        self._locked = False

    def job(self, model: str, data: list[Path], out: Path) -> TrainJob:
        """The run the form describes (ValueError when it does not make one)."""
        max_steps = self.max_steps.value() or None
        return TrainJob(model=model, data=[str(p) for p in data], out=out, method=self.method.currentData(),
                        epochs=None if max_steps else (self.epochs.value() or "auto"), max_steps=max_steps,
                        lr=self.lr.value() or None, batch_size=self.batch_size.value(),
                        grad_accum=self.grad_accum.value(), block_size=self.block_size.value(),
                        lora_rank=self.lora_rank.value() or None,
                        lora_alpha=float(self.lora_alpha.value()) or None,
                        lora_targets=None if self.lora_targets.currentData() is None
                        else list(self.lora_targets.currentData()),
                        eval_every=self.eval_every.value(), early_stop=self.early_stop.value(),
                        save_every=self.save_every.value(), seed=self.seed.value(),
                        weights=self.base_weights if self.method.currentData() == "lora" else "float")

    def set_base(self, spec: str, name: str = "", weights: str = "float") -> None:
        """The base model; `weights` "int8" / "int4" when the chat loaded it compact: LoRA then
        trains over the compact weights (`chatapp train --weights`), as the model fits that way."""
        self.base_weights = weights
        text = name or (_tr("the default model") if spec == "default" else Path(spec).name)
        if weights != "float":
            text = _tr("{name} ({weights}: LoRA trains over the compact weights)").format(name=text, weights=weights)
        self.base_label.setText(text)
        self.base_label.setToolTip(spec)

    @Slot()
    def set_locked_state(self, locked: Optional[bool] = None) -> None:
        """Disable the form while a run trains; fields that do not apply stay disabled."""
        if isinstance(locked, bool):
            self._locked = locked
        on = not self._locked
        for widget in self.widgets:
            widget.setEnabled(on)
        self.epochs.setEnabled(on and self.max_steps.value() == 0)
        lora = self.method.currentData() == "lora"
        for widget in (self.lora_rank, self.lora_alpha, self.lora_targets):
            widget.setEnabled(on and lora)

    @Slot(int)
    def _method_changed(self, _index: int) -> None:
        method = self.method.currentData()
        if self.lr.value() and math.isclose(self.lr.value(), DEFAULT_LR[self._method]):  # a value the user kept
            self.lr.setValue(DEFAULT_LR[method])
        self._method = method
        self.set_locked_state()
        self.changed.emit()
