"""The Train tab: documents in, a fine-tuned adapter out, and the adapters made so far.

Five parts, one module each: documents (picker and ingestion preview), the task (quiz_box:
what does the model know, Teach, what does it know after), the settings form under Advanced,
the run view (progress, chart, log) and the adapters list (with export). This panel wires
them together and owns the training child processes (`TrainingProcess`): a dry run for the
estimate and the run itself, each reporting typed events that it hands to the parts.
Long because it is the one place these parts meet; each part's logic lives in its module.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QToolButton, QVBoxLayout, QWidget

from ...training.outputs import TrainedOutput, checkpoint_step, find_checkpoint
from ...training.protocol import COMPLETED, EndEvent, EstimateEvent, TrainJob
from ..compare_view import CompareView
from ..training_process import (CANCEL_GRACE_S, CommandBuilder, RunOutcome, TrainingProcess, adapters_root,
                                build_train_command, new_out_dir, slug)
from .adapters import AdaptersBox
from .documents import DocumentsBox, local_paths
from .quiz import QuizCommandBuilder
from .quiz_box import TaskBox
from .run_view import RunView
from .settings_form import SettingsForm

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


class TrainingPanel(QWidget):
    use_adapter = Signal(str)  # adapter folder: chat with it
    adapter_off = Signal()
    use_model = Signal(str)  # a fully trained model folder: load it as the chat model
    compare_requested = Signal(str, int, object)  # prompt, seed, (left, right) engine.side_by_side.PaneSource
    training_finished = Signal(str, str)  # status, output folder

    def __init__(self, model: str = "default", adapters_dir: Optional[Path] = None,
                 command_builder: Optional[CommandBuilder] = None, grace_s: float = CANCEL_GRACE_S,
                 quiz_builder: Optional[QuizCommandBuilder] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.model = model
        self.adapters_dir = Path(adapters_dir) if adapters_dir is not None else adapters_root()
        self.command_builder = command_builder or build_train_command
        self.grace_s = grace_s
        self.process: Optional[TrainingProcess] = None
        self.estimator: Optional[TrainingProcess] = None
        self.run_options: Optional[TrainJob] = None
        self.estimated: Optional[TrainJob] = None  # the job the shown estimate is for (its out left out)
        self.last_status = ""
        self.checkpoint: Optional[str] = None
        self.checkpoint_step = 0
        self.examples_file: Optional[str] = None  # edited knowledge examples for the next run
        self.prepared_examples: Optional[str] = None  # the examples the estimate made, reused by the run
        self.examples_for: list[Path] = []  # the documents those examples were made from
        self.teach_pending = False  # Teach pressed: the estimate first, then a second press trains
        self.estimate_done: Optional[TrainJob] = None  # the job the last completed estimate was for
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.setAcceptDrops(True)
        self.docs = DocumentsBox(self.pool)
        self.form = SettingsForm()
        self.task = TaskBox(self.pool, self.adapters_dir.parent / "quiz-questions", quiz_builder)
        self.advanced = QToolButton()
        self.advanced.setText(_tr("Advanced"))
        self.advanced.setCheckable(True)
        self.advanced.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.advanced.setArrowType(Qt.RightArrow)
        self.advanced.toggled.connect(self._toggle_advanced)
        self.form.setVisible(False)
        self.run = RunView()
        # One primary action: Teach (the estimate first, then train). The plain run of the
        # settings as set, and the estimate on its own, belong with the settings under Advanced.
        self.run.start_button.setText(_tr("Train with these settings"))
        self.run.start_button.setToolTip(_tr("Advanced: start a run with the settings below as they are, "
                                             "without showing the estimate first. Teach does both."))
        for button in (self.run.estimate_button, self.run.start_button):
            button.setVisible(False)
        self.outputs = AdaptersBox(self.adapters_dir, self.pool)
        self._layout()
        self.compare_view = CompareView(self)
        self.compare_view.setWindowFlag(Qt.Window)
        self.compare_view.compare_requested.connect(self._forward_compare)
        self.docs.changed.connect(self._docs_changed)
        self.form.changed.connect(self._form_changed)
        self.run.estimate_button.clicked.connect(self.estimate)
        self.run.start_button.clicked.connect(self.start)
        self.run.cancel_button.clicked.connect(self.cancel)
        self.run.resume_button.clicked.connect(self.resume)
        self.outputs.use_adapter.connect(self.use_adapter)
        self.outputs.adapter_off.connect(self.adapter_off)
        self.outputs.use_model.connect(self.use_model)
        self.outputs.compare.connect(self.open_compare)
        self.outputs.status.connect(self.run.set_status)
        self.outputs.table.itemSelectionChanged.connect(self._adapter_selected)
        self.task.teach_requested.connect(self.teach)
        self.task.examples_saved.connect(self._examples_saved)
        self.set_model(model)
        self._update_state()
        self.outputs.refresh()

    def _layout(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self.docs)
        column.addWidget(self.task)
        column.addWidget(self.advanced)
        column.addWidget(self.form)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(380)
        right = QVBoxLayout()
        right.addWidget(self.run, 3)
        right.addWidget(self.outputs, 2)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addLayout(right, 1)

    @Slot(bool)
    def _toggle_advanced(self, shown: bool) -> None:
        """Hyperparameters: collapsed by default (the defaults work)."""
        self.form.setVisible(shown)
        self.run.estimate_button.setVisible(shown)
        self.run.start_button.setVisible(shown)
        self.advanced.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)

    # -- state ----------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self.process is not None

    @Slot()
    def _update_state(self) -> None:
        training, busy = self.process is not None, self.process is not None or self.estimator is not None
        has_data = bool(self.docs.data_paths) and self.docs.preview_used != 0
        self.run.start_button.setEnabled(not busy and has_data and bool(self.model))
        self.run.estimate_button.setEnabled(not busy and has_data and bool(self.model))
        self.task.busy_elsewhere = busy
        self.task.teach_allowed = not busy and has_data and bool(self.model)
        self.task.update_state()
        self.run.cancel_button.setEnabled(busy)
        self.run.resume_button.setVisible(not training and self.last_status in ("failed", "cancelled")
                                          and self.checkpoint is not None)
        self.form.set_locked_state(training)
        self.docs.set_locked(training)
        self.outputs.update_state()

    @Slot()
    def _docs_changed(self) -> None:
        paths = self.docs.data_paths
        self.task.data_paths = list(paths)
        if (self.examples_file or self.prepared_examples) and list(paths) != self.examples_for:
            # made from other documents
            self.examples_file = self.prepared_examples = None
            self.task.set_examples(None)
            self.task.examples_label.setText("")
        if not self.form.name_edit.text() and paths:
            self.form.name_edit.setText(slug(paths[0].stem or "adapter"))
        self._update_state()

    @Slot()
    def _form_changed(self) -> None:
        self.prepared_examples = None  # the method or seed they were made with may have changed
        self._update_state()

    @Slot(str)
    def set_model(self, spec: str, name: str = "", weights: str = "float") -> None:
        """The base model to fine-tune: the chat's current model, as a spec ("default" or a path);
        weights: "int8" / "int4" when it was loaded compact (LoRA trains over them)."""
        self.model = spec
        self.form.set_base(spec, name, weights)
        self.task.model = spec
        self._update_state()

    @Slot(str)
    def set_active_adapter(self, path: str) -> None:
        """Which adapter the chat uses now ("" none), marked in the list."""
        self.outputs.set_active_adapter(path)

    @property
    def active_adapter(self) -> str:
        return self.outputs.active_adapter

    # -- documents dropped anywhere on the tab ------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if self.process is None and local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = local_paths(event.mimeData())
        if self.process is not None or not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.docs.add_paths(paths)

    # -- running --------------------------------------------------------------------------------
    def options(self) -> TrainJob:
        """The run the settings describe (ValueError when they do not make one)."""
        name = slug(self.form.name_edit.text() or "adapter")
        job = self.form.job(self.model, self.docs.data_paths, new_out_dir(name, root=self.adapters_dir))
        examples = self.examples_file or self.prepared_examples
        return dataclasses.replace(job, examples=examples) if examples else job

    def _checked_options(self) -> Optional[TrainJob]:
        try:
            return self.options()
        except ValueError as exc:
            self.run.set_status(_tr("Cannot start: {reason}").format(reason=str(exc)), failed=True)
            return None

    def _process(self, job: TrainJob, dry_run: bool) -> Optional[TrainingProcess]:
        try:
            command = self.command_builder(job, dry_run)
        except (ValueError, OSError) as exc:
            self.run.set_status(_tr("Cannot start: {reason}").format(reason=str(exc)), failed=True)
            return None
        process = TrainingProcess(command, self, grace_s=self.grace_s)
        process.output.connect(self.run.log)
        process.event.connect(self.run.log_event)
        process.ingest.connect(self.docs.show_ingest_report)
        process.dataset.connect(self._on_dataset)
        return process

    @staticmethod
    def _same_run(a: Optional[TrainJob], b: TrainJob) -> bool:
        return a is not None and dataclasses.replace(a, out=None, resume=None) == \
            dataclasses.replace(b, out=None, resume=None)

    @Slot()
    def estimate(self) -> None:
        """A `--dry-run`: reads the documents and sizes the run without training."""
        job = None if self.process is not None or self.estimator is not None else self._checked_options()
        if job is None:
            return
        self.estimator = self._process(job, dry_run=True)
        if self.estimator is None:
            return
        self.estimated = job
        self.estimator.estimate.connect(self.run.show_estimate)
        self.estimator.ended.connect(self._on_estimate_ended)
        self.run.estimate_label.setStyleSheet("")
        self.run.estimate_label.setText(_tr("Estimating…"))
        self.estimator.start()
        self._update_state()

    @Slot()
    def teach(self) -> None:
        """One button: the first press shows the estimate; a press once it is shown trains."""
        job = None if self.process is not None or self.estimator is not None else self._checked_options()
        if job is None:
            return
        if self.estimate_done is not None and self._same_run(dataclasses.replace(self.estimate_done, examples=None),
                                                             dataclasses.replace(job, examples=None)):
            self.teach_pending = False
            self.task.teach_label.setText("")
            self.start()
            return
        self.teach_pending = True
        self.task.teach_label.setText(_tr("Estimating how long teaching takes…"))
        self.estimate()

    @Slot()
    def start(self) -> None:
        job = None if self.process is not None or self.estimator is not None else self._checked_options()
        if job is None:
            return
        self.run.reset()
        self.checkpoint, self.checkpoint_step = None, 0
        self._launch(job)

    @Slot()
    def resume(self) -> None:
        if self.process is not None or self.run_options is None or self.checkpoint is None:
            return
        job = dataclasses.replace(self.run_options, resume=Path(self.checkpoint))
        self.run.chart.truncate_after(self.checkpoint_step)
        self._launch(job)

    def _launch(self, job: TrainJob) -> None:
        process = self._process(job, dry_run=False)
        if process is None:
            return
        self.run_options = job
        self.process = process
        process.estimate.connect(self._on_run_estimate)
        process.stepped.connect(self.run.show_step)
        process.examples.connect(self.run.show_examples)
        process.evaluated.connect(self.run.show_eval)
        process.checkpointed.connect(self._on_checkpoint)
        process.ended.connect(self._on_ended)
        self.last_status = "running"
        self.run.preparing()
        process.start()
        self._update_state()

    @Slot()
    def cancel(self) -> None:
        for process in (self.process, self.estimator):
            if process is not None:
                process.cancel()
        if self.process is not None:
            self.run.set_status(_tr("Cancelling: saving a checkpoint…"))

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """For the window's close: cancel (the child checkpoints), wait a bounded time, then kill."""
        self.docs.stop()
        self.task.shutdown()
        self.outputs.shutdown()
        for process in (self.process, self.estimator):
            if process is not None and process.is_running():
                process.cancel()
                if not process.wait(timeout_s):
                    process.process.kill()
                    process.wait(2.0)
        self.pool.clear()
        self.pool.waitForDone(5000)

    # -- events from the runs ---------------------------------------------------------------------
    @Slot(object)
    def _on_run_estimate(self, event: EstimateEvent) -> None:
        # The run measures its speed again; an estimate the user already read for this same run
        # stays, so the number does not change under their eyes when training starts.
        if self._same_run(self.estimated, self.run_options):
            self.run.chart.set_total_steps(event.total_steps)
            return
        self.estimated = self.run_options
        self.run.show_estimate(event)

    @Slot(object)
    def _on_dataset(self, event) -> None:
        self.run.show_dataset(event)
        self.docs.show_dataset(event)

    @Slot(str, str, object)
    def _on_estimate_ended(self, status: str, reason: str, _outcome: RunOutcome) -> None:
        estimator, self.estimator = self.estimator, None
        if estimator is not None:
            estimator.deleteLater()
        if status == COMPLETED and self.estimated is not None:
            self.estimate_done = self.estimated
            from ...training.knowledge import EXAMPLES_FILE
            made = Path(self.estimated.out) / EXAMPLES_FILE  # the knowledge recipe's examples: a dry step
            if not self.examples_file and made.is_file():
                self.prepared_examples, self.examples_for = str(made), list(self.docs.data_paths)
                self.task.set_examples(str(made))
            if self.teach_pending:
                self.task.teach_label.setText(self.run.estimate_label.text() + "\n" +
                                              _tr("Press Teach again to start."))
        elif self.teach_pending:
            self.task.teach_label.setText("")
        self.teach_pending = False
        if status == "failed":
            self.run.show_estimate_failed(reason)
        elif status == "cancelled":
            self.run.estimate_label.setText(_tr("Estimate cancelled."))
        self._update_state()

    @Slot(object)
    def _on_checkpoint(self, event) -> None:
        self.checkpoint, self.checkpoint_step = event.path, event.step

    @Slot(str, str, object)
    def _on_ended(self, status: str, reason: str, outcome: RunOutcome) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.deleteLater()
        self.last_status = status
        end = outcome.end or EndEvent(status=status)
        for value, attr in ((end.val_ppl_before, "ppl_before"), (end.val_ppl_after, "ppl_after")):
            if isinstance(value, (int, float)):
                setattr(self.run, attr, float(value))
        self.run.show_ppl()
        out = end.out or str(self.run_options.out if self.run_options else "")
        if status != COMPLETED and outcome.checkpoint:
            self.checkpoint, self.checkpoint_step = outcome.checkpoint, outcome.checkpoint_step
        if status != COMPLETED and self.checkpoint is None and self.run_options is not None:
            found = find_checkpoint(self.run_options.out)
            if found is not None:
                self.checkpoint, self.checkpoint_step = str(found), checkpoint_step(found) or 0
        resumable = (" " + _tr("A checkpoint at step {step} was kept: press Resume to continue from it.").format(
            step=self.checkpoint_step)) if self.checkpoint else ""
        if status == COMPLETED:
            self._completed(end, out)
        elif status == "cancelled":
            self.run.stopped(_tr("Cancelled"))
            step = end.step if end.step is not None else self.checkpoint_step
            text = _tr("Cancelled at step {step}.").format(step=step) if step else _tr("Cancelled.")
            if reason and outcome.end is None:  # our own words (killed after the grace period)
                text = _tr("Cancelled: {reason}.").format(reason=reason)
            self.run.set_status(text + resumable)
        elif outcome.unexpected and self.checkpoint:  # killed or crashed: its last checkpoint is whole
            self.run.stopped(_tr("Stopped"))
            self.run.set_status(_tr("Training stopped unexpectedly; resume from step {step} with Resume. "
                                    "({reason})").format(step=self.checkpoint_step, reason=reason), failed=True)
        else:
            self.run.stopped(_tr("Failed"))
            self.run.set_status(_tr("Failed: {reason}").format(reason=reason or _tr("unknown error")) + resumable,
                                failed=True)
        self._update_state()
        self.training_finished.emit(status, out)

    def _completed(self, end: EndEvent, out: str) -> None:
        steps = end.step if end.step is not None else self.run.progress.maximum()
        self.run.completed(steps)
        message = _tr("Completed {steps} steps. Saved to {out}").format(steps=steps, out=out)
        if end.reason == "early_stop":
            message = _tr("Stopped early at step {step}: held-out perplexity stopped improving.").format(
                step=end.step) + " " + message
        if end.restored_step is not None:
            message += _tr(" (the weights of step {step}, the lowest held-out perplexity)").format(
                step=end.restored_step)
        summary = self.run.change_summary()
        self.run.set_status(message + ("\n" + summary if summary else ""))
        self.outputs.highlight = self.run_options.out if self.run_options else None
        self.outputs.refresh()
        from ...training.knowledge import EXAMPLES_FILE
        examples = Path(out) / EXAMPLES_FILE
        self.task.set_examples(str(examples) if out and examples.is_file() else None)
        if out and self.task.questions and (Path(out) / "adapter_config.json").is_file():
            self.task.ask(out, after_run=True)  # what does it know after?

    # -- adapters -------------------------------------------------------------------------------
    @Slot()
    def _adapter_selected(self) -> None:
        entry = self.outputs.selected()
        self.task.load_for_adapter(entry.path if entry is not None and entry.kind == "adapter" else None)

    @Slot(str)
    def _examples_saved(self, path: str) -> None:
        # the estimate stays: the run is the same but for its examples
        self.examples_file, self.examples_for = path, list(self.docs.data_paths)

    @Slot(object)
    def open_compare(self, entry: TrainedOutput) -> None:
        """Side by side, opened on the base model (left) and this adapter (right); the other
        adapters in the list are choices for either pane."""
        self.compare_view.set_adapters([(e.name, e.path) for e in self.outputs.adapters
                                        if e.kind == "adapter" and not e.error])
        self.compare_view.set_adapter(entry.path, entry.name)
        self.compare_view.show()
        self.compare_view.raise_()

    @Slot(str, int, object)
    def _forward_compare(self, prompt: str, seed: int, sources: tuple) -> None:
        self.compare_requested.emit(prompt, seed, sources)
