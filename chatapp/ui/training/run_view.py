"""The Train tab's run: buttons, estimate, progress, status, loss chart and the child's log.

It only shows; the panel owns the processes and feeds this view their typed events. The
status line says what happened in words: a run that completed also says how much it changed
the model (and what to do when that is next to nothing), a cancelled one points at Resume, a
failure gives its reason (a crash or a kill is a failure, never "Done").
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ...training.protocol import DatasetEvent, EstimateEvent, EvalEvent, Event, ExamplesEvent, StepEvent, finite
from ..loss_chart import LossChart
from .common import RED, format_eta, format_eta_range, memory_text

NEGLIGIBLE_CHANGE = 0.05  # a held-out perplexity change under 5% is within the noise of a small split
LOSS_WINDOW = 5  # steps averaged for the training loss at the start and at the end


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


def loss_change(losses: list[float]) -> Optional[tuple[float, float]]:
    """(mean of the first steps' losses, mean of the last steps'), or None with fewer than two steps."""
    if len(losses) < 2:
        return None
    n = max(1, min(LOSS_WINDOW, len(losses) // 2))
    return sum(losses[:n]) / n, sum(losses[-n:]) / n


class RunView(QGroupBox):
    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(_tr("Training"), parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.estimate_button = QPushButton(_tr("Estimate"))
        self.start_button = QPushButton(_tr("Start training"))
        self.cancel_button = QPushButton(_tr("Cancel"))
        self.resume_button = QPushButton(_tr("Resume"))
        self.log_button = QPushButton(_tr("Show log"), checkable=True)
        for button in (self.estimate_button, self.start_button, self.cancel_button, self.resume_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.log_button)
        layout.addLayout(row)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(_tr("Not started"))
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.status_label.setObjectName("trainingStatus")
        self.details_label = QLabel("")
        self.ppl_label = QLabel("")
        self.chart = LossChart()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setVisible(False)
        for widget in (self.estimate_label, self.progress, self.status_label, self.details_label, self.ppl_label):
            layout.addWidget(widget)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.log_view, 1)
        self.log_button.toggled.connect(self._toggle_log)
        self.ppl_before: Optional[float] = None
        self.ppl_after: Optional[float] = None
        self.losses: list[float] = []

    @Slot(bool)
    def _toggle_log(self, shown: bool) -> None:
        self.log_view.setVisible(shown)
        self.log_button.setText(_tr("Hide log") if shown else _tr("Show log"))

    @Slot(str)
    def log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    @Slot(object)
    def log_event(self, event: Event) -> None:
        """The run's own account, as `chatapp train` prints it without --progress."""
        line = event.describe()
        if line:
            self.log_view.appendPlainText(line)

    def set_status(self, text: str, failed: bool = False) -> None:
        self.status_label.setStyleSheet(RED if failed else "")
        self.status_label.setText(text)

    # -- a new run -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.chart.clear()
        self.ppl_before = self.ppl_after = None
        self.losses = []
        self.ppl_label.setText("")
        self.log_view.clear()

    def preparing(self) -> None:
        self.progress.setRange(0, 0)  # busy until the first step says how many there are
        self.progress.setFormat(_tr("Preparing…"))
        self.details_label.setText("")
        self.set_status(_tr("Reading documents and loading the model…"))

    # -- events --------------------------------------------------------------------------------
    def show_examples(self, event: ExamplesEvent) -> None:
        """The knowledge recipe at work: the model answering questions about the documents, then the file."""
        if event.path:
            self.set_status(_tr("{n} questions and answers written to {path}; training starts.").format(
                n=event.examples, path=event.path))
            return
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            self.progress.setFormat(_tr("Writing questions %v/%m"))
            self.set_status(_tr("The model is writing questions and answers about your documents "
                                "({done} of {total})…").format(done=event.done, total=event.total))

    def show_estimate(self, event: EstimateEvent) -> None:
        memory, available = event.memory_bytes, event.available_bytes
        parts = []
        if memory:
            parts.append(_tr("needs about {memory} of memory").format(memory=memory_text(memory)))
            if available:
                parts[-1] += _tr(" ({available} available)").format(available=memory_text(available))
        if event.total_steps:
            self.chart.set_total_steps(event.total_steps)
        if finite(event.eta_s):
            if finite(event.eta_low_s) and finite(event.eta_high_s):
                parts.append(_tr("takes {range} ({steps} steps)").format(
                    range=format_eta_range(event.eta_low_s, event.eta_high_s), steps=event.total_steps))
            else:
                parts.append(_tr("takes about {eta}").format(eta=format_eta(event.eta_s)))
        text = _tr("Estimate: {details}.").format(details=", ".join(parts) or "?")
        too_big = not event.fits or (bool(available) and 0 < available < memory)
        if too_big:
            text += " " + _tr("This will likely run out of memory: use LoRA, a smaller batch size "
                              "or a shorter block size.")
        self.estimate_label.setStyleSheet(RED if too_big else "")
        self.estimate_label.setText(text)

    def show_estimate_failed(self, reason: str) -> None:
        self.estimate_label.setStyleSheet(RED)
        self.estimate_label.setText(_tr("Estimate failed: {reason}").format(reason=reason))

    def show_dataset(self, event: DatasetEvent) -> None:
        text = _tr("{train} tokens to train on, {val} held out for validation.").format(
            train=event.train_tokens, val=event.val_tokens)
        if not event.val_blocks:
            text += " " + _tr("Too little text is held out to measure perplexity.")
        self.details_label.setText(text)

    def show_step(self, event: StepEvent) -> None:
        step, total = event.step, event.total_steps
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.chart.set_total_steps(total)
        self.progress.setFormat(_tr("Step {step} of {total} · about {eta} left").format(
            step=step, total=total or "?", eta=format_eta(event.eta_s)))
        if finite(event.loss):
            self.chart.add_loss(step, event.loss)
            del self.losses[max(0, step - 1):]  # a resumed run repeats nothing: the chart keeps the newest
            self.losses.append(float(event.loss))
            self.details_label.setText(_tr("loss {loss:.4f} · {speed:,.0f} tokens/s · lr {lr:.2e}").format(
                loss=event.loss, speed=event.tokens_per_s or 0, lr=event.lr or 0.0))
        else:
            self.details_label.setText(_tr("The loss is not a number: training has diverged; "
                                           "try a lower learning rate."))
        self.set_status(_tr("Training…"))

    def show_eval(self, event: EvalEvent) -> None:
        if not finite(event.val_ppl):
            return
        self.chart.add_eval(event.step, event.val_ppl)
        if self.ppl_before is None:
            self.ppl_before = float(event.val_ppl)
        else:
            self.ppl_after = float(event.val_ppl)
        self.show_ppl()

    def show_ppl(self) -> None:
        if self.ppl_before is None:
            return
        text = _tr("Perplexity on held-out text: before {before:.2f}").format(before=self.ppl_before)
        if self.ppl_after is not None:
            change = (self.ppl_after / self.ppl_before - 1) * 100
            text += _tr(", after {after:.2f} ({change:+.0f}%)").format(after=self.ppl_after, change=change)
        self.ppl_label.setText(text)

    # -- the end -------------------------------------------------------------------------------
    def change_summary(self) -> str:
        """How much the run changed the model, and what to do when that is next to nothing."""
        parts = []
        losses = loss_change(self.losses)
        if losses is not None:
            parts.append(_tr("training loss {first:.2f} → {last:.2f}").format(first=losses[0], last=losses[1]))
        if self.ppl_before is not None and self.ppl_after is not None:
            change = self.ppl_after / self.ppl_before - 1
            parts.append(_tr("held-out perplexity {before:.2f} → {after:.2f} ({change:+.1f}%)").format(
                before=self.ppl_before, after=self.ppl_after, change=change * 100))
            if abs(change) < NEGLIGIBLE_CHANGE:
                advice = _tr("The model barely changed: train longer (more epochs or steps), raise the "
                             "learning rate, or choose more LoRA layers.")
            elif change > 0:
                advice = _tr("The model got worse on text it did not train on: it is learning the training "
                             "text by heart. Train for fewer steps, lower the learning rate, or stop early.")
            else:
                advice = _tr("The model fits your documents better than before.")
        elif losses is not None:
            drop = 1 - losses[1] / losses[0] if losses[0] else 0.0
            advice = (_tr("The training loss barely moved: train longer or raise the learning rate.")
                      if drop < NEGLIGIBLE_CHANGE else
                      _tr("No text was held out, so it is unknown how well this carries over to new text."))
        else:
            return ""
        return _tr("Change: {parts}.").format(parts=_tr("; ").join(parts)) + " " + advice

    def completed(self, steps: int) -> None:
        self.progress.setRange(0, max(1, self.progress.maximum()))
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(_tr("Completed · {steps} steps").format(steps=steps))

    def stopped(self, label: str) -> None:
        if self.progress.maximum() == 0:  # still the busy indicator
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.progress.setFormat(label + " · %v / %m")

