"""The training tab: documents in, a fine-tuned adapter out, and the adapters made so far.

Training itself runs in a child process (`TrainingProcess`); reading the documents for the
preview and scanning the adapters folder (which imports torch) run on a thread pool and report
back through queued signals to methods of this panel, so the GUI thread never waits on disk
or torch. The status line says what happened in words: "Completed", "Cancelled", or
"Failed: <reason>" (a crash or a kill is a failure, never "Done"), and a run that was cancelled
or failed after a checkpoint can be resumed from it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
                               QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .compare_view import CompareView
from .export_process import ExportProcess, build_export_command, free_folder
from .loss_chart import LossChart
from .training_process import (CANCEL_GRACE_S, CommandBuilder, TrainingProcess, TrainOptions, adapters_root,
                               build_train_command, find_checkpoint, human_bytes, new_out_dir, scan_adapters,
                               slug)

log = logging.getLogger(__name__)

DEFAULT_LR = {"lora": 2e-4, "full": 5e-5, "scratch": 1e-3}  # as chatapp.training.run (which imports torch)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


def format_eta(seconds) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return "…"
    s = int(round(seconds))
    if s < 60:
        return _tr("{s} s").format(s=s)
    if s < 3600:
        return _tr("{m} min {s:02d} s").format(m=s // 60, s=s % 60)
    return _tr("{h} h {m:02d} min").format(h=s // 3600, m=s % 3600 // 60)


# -- background jobs ---------------------------------------------------------------------------
class JobSignals(QObject):
    """Emitted from a pool thread; connected to panel methods, so delivered in the GUI thread."""

    done = Signal(int, object)  # ticket, result
    failed = Signal(int, str)  # ticket, message


class Job(QRunnable):
    def __init__(self, ticket: int, work: Callable[[], object], signals: JobSignals) -> None:
        super().__init__()
        self.ticket, self.work, self.signals = ticket, work, signals

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # shown in the panel, never a traceback dialog
            log.debug("background job %d failed", self.ticket, exc_info=True)
            self.signals.failed.emit(self.ticket, str(exc) or type(exc).__name__)
        else:
            self.signals.done.emit(self.ticket, result)


class PreviewCancelled(Exception):
    pass


def preview_ingest(paths: list[Path], cancel: threading.Event) -> dict:
    """The ingestion report (IngestReport.to_dict()) of `paths`, one document in memory at a time."""
    from ..documents.reading import Ingestor

    def on_file(_report) -> None:
        if cancel.is_set():
            raise PreviewCancelled("superseded")

    ingestor = Ingestor(paths, on_file=on_file)
    for _document in ingestor.documents():
        pass
    return ingestor.report.to_dict()


# -- the panel ---------------------------------------------------------------------------------
class TrainingPanel(QWidget):
    use_adapter = Signal(str)  # adapter folder: chat with it
    adapter_off = Signal()
    use_model = Signal(str)  # a fully trained model folder: load it as the chat model
    compare_requested = Signal(str, int, str)  # prompt, seed, adapter folder
    training_finished = Signal(str, str)  # status, output folder

    def __init__(self, model: str = "default", adapters_dir: Optional[Path] = None,
                 command_builder: Optional[CommandBuilder] = None, grace_s: float = CANCEL_GRACE_S,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.model = model
        self.adapters_dir = Path(adapters_dir) if adapters_dir is not None else adapters_root()
        self.command_builder = command_builder or build_train_command
        self.grace_s = grace_s
        self.process: Optional[TrainingProcess] = None
        self.estimator: Optional[TrainingProcess] = None
        self.exporter: Optional[ExportProcess] = None
        self.export_prefix: Optional[list[str]] = None  # None: this app (tests run it another way)
        self.choose_export_parent: Callable[[Path], Optional[Path]] = self._ask_export_parent
        self.run_options: Optional[TrainOptions] = None
        self.last_status = ""
        self.checkpoint: Optional[str] = None
        self.checkpoint_step = 0
        self.ppl_before: Optional[float] = None
        self.ppl_after: Optional[float] = None
        self.preview_used: Optional[int] = None
        self.adapters: list[dict] = []
        self.active_adapter = ""
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._preview_ticket = 0
        self._preview_cancel = threading.Event()
        self._scan_ticket = 0
        self.preview_signals = JobSignals()
        self.preview_signals.done.connect(self._on_preview_done)
        self.preview_signals.failed.connect(self._on_preview_failed)
        self.scan_signals = JobSignals()
        self.scan_signals.done.connect(self._on_scan_done)
        self.scan_signals.failed.connect(self._on_scan_failed)
        self.setAcceptDrops(True)
        self._build()
        self.compare_view = CompareView(self)
        self.compare_view.setWindowFlag(Qt.Window)
        self.compare_view.compare_requested.connect(self._forward_compare)
        self.set_model(model)
        self._update_state()
        self.refresh_adapters()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        docs = QGroupBox(_tr("Documents"))
        docs_layout = QVBoxLayout(docs)
        row = QHBoxLayout()
        self.add_folder_button = QPushButton(_tr("Add folder…"))
        self.add_files_button = QPushButton(_tr("Add files…"))
        self.clear_button = QPushButton(_tr("Clear"))
        for button in (self.add_folder_button, self.add_files_button, self.clear_button):
            row.addWidget(button)
        docs_layout.addLayout(row)
        self.paths_list = QListWidget()
        self.paths_list.setAccessibleName(_tr("Chosen documents"))
        self.paths_list.setMaximumHeight(80)
        docs_layout.addWidget(self.paths_list)
        hint = QLabel(_tr("Or drop files and folders here."))
        hint.setEnabled(False)
        docs_layout.addWidget(hint)
        self.preview_label = QLabel(_tr("No documents chosen."))
        self.preview_label.setWordWrap(True)
        docs_layout.addWidget(self.preview_label)
        self.skipped_table = QTableWidget(0, 2)
        self.skipped_table.setHorizontalHeaderLabels([_tr("Skipped file"), _tr("Reason")])
        self.skipped_table.setAccessibleName(_tr("Skipped files"))
        self._table_defaults(self.skipped_table)
        self.skipped_table.setMaximumHeight(140)
        docs_layout.addWidget(self.skipped_table)
        column.addWidget(docs)
        column.addWidget(self._build_settings())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)

        right = QVBoxLayout()
        run = QGroupBox(_tr("Training"))
        run_layout = QVBoxLayout(run)
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
        run_layout.addLayout(row)
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
        self.log_view.setMaximumBlockCount(1000)
        self.log_view.setVisible(False)
        for widget in (self.estimate_label, self.progress, self.status_label, self.details_label,
                       self.ppl_label):
            run_layout.addWidget(widget)
        run_layout.addWidget(self.chart, 1)
        run_layout.addWidget(self.log_view, 1)
        right.addWidget(run, 3)
        right.addWidget(self._build_adapters(), 2)

        layout = QHBoxLayout(self)
        layout.addWidget(scroll, 2)
        layout.addLayout(right, 3)

        self.add_folder_button.clicked.connect(self.choose_folder)
        self.add_files_button.clicked.connect(self.choose_files)
        self.clear_button.clicked.connect(self.clear_paths)
        self.estimate_button.clicked.connect(self.estimate)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self.log_button.toggled.connect(self.log_view.setVisible)

    def _build_settings(self) -> QGroupBox:
        box = QGroupBox(_tr("Method and settings"))
        form = QFormLayout(box)
        self.base_label = QLabel("")
        self.base_label.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(_tr("adapter"))
        self.method = QComboBox()
        for label, value in ((_tr("LoRA (recommended)"), "lora"), (_tr("Full fine-tune"), "full"),
                             (_tr("From scratch"), "scratch")):
            self.method.addItem(label, value)
        self.epochs = QDoubleSpinBox(minimum=0.1, maximum=1000, singleStep=0.5, decimals=1, value=1.0)
        self.max_steps = QSpinBox(minimum=0, maximum=10_000_000, value=0)
        self.max_steps.setSpecialValueText(_tr("From epochs"))
        self.lr = QDoubleSpinBox(minimum=1e-6, maximum=1.0, singleStep=1e-5, decimals=6, value=DEFAULT_LR["lora"])
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=4)
        self.grad_accum = QSpinBox(minimum=1, maximum=4096, value=1)
        self.block_size = QSpinBox(minimum=16, maximum=131072, singleStep=64, value=256)
        self.lora_rank = QSpinBox(minimum=1, maximum=1024, value=8)
        self.lora_alpha = QSpinBox(minimum=1, maximum=4096, value=16)
        self.lora_targets = QComboBox()
        for label, targets in ((_tr("Attention q, v (fastest)"), ["q_proj", "v_proj"]),
                               (_tr("All attention (q, k, v, o)"), ["q_proj", "k_proj", "v_proj", "o_proj"]),
                               (_tr("All linear layers (learns most)"),
                                ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])):
            self.lora_targets.addItem(label, targets)
        self.lora_targets.setToolTip(_tr("Which layers get an adapter: more layers learn more from the "
                                         "documents, train slower, and overfit sooner"))
        self.eval_every = QSpinBox(minimum=0, maximum=1_000_000, value=50)
        self.eval_every.setSpecialValueText(_tr("Before and after only"))
        self.early_stop = QSpinBox(minimum=0, maximum=1000, value=0)
        self.early_stop.setSpecialValueText(_tr("Never"))
        self.early_stop.setSuffix(_tr(" evaluations"))
        self.early_stop.setToolTip(_tr("Stop when this many evaluations in a row find no lower held-out "
                                       "perplexity, and keep the weights of the best one"))
        self.save_every = QSpinBox(minimum=0, maximum=1_000_000, value=100)
        self.save_every.setSpecialValueText(_tr("At the end only"))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.settings_widgets = [self.name_edit, self.method, self.epochs, self.max_steps, self.lr,
                                 self.batch_size, self.grad_accum, self.block_size, self.lora_rank,
                                 self.lora_alpha, self.lora_targets, self.eval_every, self.early_stop, self.save_every, self.seed]
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
        self._method = "lora"
        self.method.currentIndexChanged.connect(self._method_changed)
        self.max_steps.valueChanged.connect(self._update_state)
        return box

    def _build_adapters(self) -> QGroupBox:
        box = QGroupBox(_tr("Adapters and trained models"))
        layout = QVBoxLayout(box)
        self.adapters_table = QTableWidget(0, 4)
        self.adapters_table.setHorizontalHeaderLabels([_tr("Name"), _tr("Base model"), _tr("Date"),
                                                       _tr("Val. perplexity")])
        self.adapters_table.setAccessibleName(_tr("Adapters"))
        self._table_defaults(self.adapters_table)
        layout.addWidget(self.adapters_table)
        row = QHBoxLayout()
        self.chat_button = QPushButton(_tr("Chat with this adapter"))
        self.off_button = QPushButton(_tr("Switch adapter off"))
        self.compare_button = QPushButton(_tr("Compare"))
        self.open_folder_button = QPushButton(_tr("Open folder"))
        self.export_button = QPushButton(_tr("Export merged…"))
        self.export_button.setToolTip(_tr("Write the adapter merged into its base model as a model folder "
                                          "that this app and transformers open"))
        self.refresh_button = QPushButton(_tr("Refresh"))
        for button in (self.chat_button, self.off_button, self.compare_button, self.open_folder_button,
                       self.export_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)
        self.adapters_table.itemSelectionChanged.connect(self._update_state)
        self.adapters_table.itemDoubleClicked.connect(self.chat_with_selected)
        self.chat_button.clicked.connect(self.chat_with_selected)
        self.off_button.clicked.connect(self.adapter_off)
        self.compare_button.clicked.connect(self.open_compare)
        self.open_folder_button.clicked.connect(self.open_selected_folder)
        self.export_button.clicked.connect(self.export_selected)
        self.refresh_button.clicked.connect(self.refresh_adapters)
        return box

    @staticmethod
    def _table_defaults(table: QTableWidget) -> None:
        table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectRows)
        table.setSelectionMode(QAbstractItemView.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)

    # -- state ------------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self.process is not None

    @Slot()
    def _update_state(self) -> None:
        training, estimating = self.process is not None, self.estimator is not None
        busy = training or estimating
        has_data = self.paths_list.count() > 0 and self.preview_used != 0
        self.start_button.setEnabled(not busy and has_data and bool(self.model))
        self.estimate_button.setEnabled(not busy and has_data and bool(self.model))
        self.cancel_button.setEnabled(busy)
        self.resume_button.setVisible(not training and self.last_status in ("failed", "cancelled")
                                      and self.checkpoint is not None)
        for widget in self.settings_widgets + [self.add_folder_button, self.add_files_button, self.clear_button]:
            widget.setEnabled(not training)
        self.epochs.setEnabled(not training and self.max_steps.value() == 0)
        lora = self.method.currentData() == "lora"
        self.lora_rank.setEnabled(not training and lora)
        self.lora_alpha.setEnabled(not training and lora)
        self.lora_targets.setEnabled(not training and lora)
        row = self._selected_adapter()
        usable = row is not None and not row["error"]
        self.chat_button.setEnabled(usable)
        self.chat_button.setText(_tr("Chat with this model") if row and row["kind"] == "model"
                                 else _tr("Chat with this adapter"))
        self.compare_button.setEnabled(usable and row["kind"] == "adapter")
        self.open_folder_button.setEnabled(row is not None)
        self.export_button.setEnabled(usable and row["kind"] == "adapter" and self.exporter is None)

    @Slot(str)
    def set_model(self, spec: str, name: str = "") -> None:
        """The base model to fine-tune: the chat's current model, as a spec ("default" or a path)."""
        self.model = spec
        self.base_label.setText(name or (_tr("the default model") if spec == "default" else Path(spec).name))
        self.base_label.setToolTip(spec)
        self._update_state()

    @Slot(str)
    def set_active_adapter(self, path: str) -> None:
        """Which adapter the chat uses now ("" none), marked in the list."""
        self.active_adapter = str(path)
        self._fill_adapters()

    @Slot(int)
    def _method_changed(self, _index: int) -> None:
        method = self.method.currentData()
        if math.isclose(self.lr.value(), DEFAULT_LR[self._method]):  # only a value the user kept
            self.lr.setValue(DEFAULT_LR[method])
        self._method = method
        self._update_state()

    # -- documents --------------------------------------------------------------------------------
    @property
    def data_paths(self) -> list[Path]:
        return [Path(self.paths_list.item(i).text()) for i in range(self.paths_list.count())]

    def set_data_paths(self, paths) -> None:
        self.paths_list.clear()
        self.add_paths(paths)

    def add_paths(self, paths) -> None:
        known = set(self.data_paths)
        for path in (Path(p) for p in paths):
            if path not in known:
                known.add(path)
                self.paths_list.addItem(str(path))
        if not self.name_edit.text() and self.paths_list.count():
            self.name_edit.setText(slug(self.data_paths[0].stem or "adapter"))
        self.start_preview()

    @Slot()
    def clear_paths(self) -> None:
        self.paths_list.clear()
        self.start_preview()

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, _tr("Choose a folder of documents"))
        if folder:
            self.add_paths([folder])

    @Slot()
    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, _tr("Choose documents"), "",
                                                _tr("Documents (*.txt *.md *.rst *.html *.htm *.pdf *.docx);;"
                                                    "All files (*)"))
        if files:
            self.add_paths(files)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if self.process is None and _local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = _local_paths(event.mimeData())
        if self.process is not None or not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    def start_preview(self) -> None:
        """Read the chosen documents off the GUI thread; a newer preview supersedes an older one."""
        self._preview_cancel.set()
        self._preview_ticket += 1
        self._preview_cancel = threading.Event()
        self.skipped_table.setRowCount(0)
        self.preview_used = None
        paths = self.data_paths
        if not paths:
            self.preview_label.setText(_tr("No documents chosen."))
        else:
            self.preview_label.setText(_tr("Reading the documents…"))
            cancel = self._preview_cancel
            self.pool.start(Job(self._preview_ticket, lambda: preview_ingest(paths, cancel), self.preview_signals))
        self._update_state()

    @Slot(int, object)
    def _on_preview_done(self, ticket: int, report: dict) -> None:
        if ticket == self._preview_ticket:
            self.show_ingest_report(report)

    @Slot(int, str)
    def _on_preview_failed(self, ticket: int, message: str) -> None:
        if ticket == self._preview_ticket:
            self.preview_used = 0
            self.preview_label.setText(_tr("Cannot read the documents: {message}").format(message=message))
            self._update_state()

    @Slot(dict)
    def show_ingest_report(self, report: dict) -> None:
        files = report.get("files") or []
        skipped = [f for f in files if f.get("status") != "used"]
        used = int(report.get("files_used", len(files) - len(skipped)))
        self.preview_used = used
        text = _tr("{used} files used, {skipped} skipped.").format(
            used=used, skipped=report.get("files_skipped", len(skipped)))
        if used == 0:
            text += "\n" + _tr("None of these files can be used for training.")
        self.preview_label.setText(text)
        self.skipped_table.setRowCount(len(skipped))
        for row, entry in enumerate(skipped):
            path = str(entry.get("path", ""))
            item = QTableWidgetItem(self._short_path(path))
            item.setToolTip(path)
            self.skipped_table.setItem(row, 0, item)
            self.skipped_table.setItem(row, 1, QTableWidgetItem(str(entry.get("reason") or entry.get("kind", ""))))
        self._update_state()

    def _short_path(self, path: str) -> str:
        for root in self.data_paths:
            try:
                return str(Path(path).relative_to(root)) if root.is_dir() else Path(path).name
            except ValueError:
                continue
        return path

    # -- running ----------------------------------------------------------------------------------
    def _checked_options(self) -> Optional[TrainOptions]:
        try:
            return self.options()
        except ValueError as exc:
            self._set_status(_tr("Cannot start: {reason}").format(reason=str(exc)), failed=True)
            return None

    def options(self) -> TrainOptions:
        """The run the settings describe (ValueError when they do not make one)."""
        name = slug(self.name_edit.text() or "adapter")
        max_steps = self.max_steps.value() or None
        return TrainOptions(model=self.model, data=self.data_paths, name=name,
                            out_dir=new_out_dir(name, root=self.adapters_dir), method=self.method.currentData(),
                            epochs=None if max_steps else self.epochs.value(), max_steps=max_steps,
                            lr=self.lr.value(), batch_size=self.batch_size.value(),
                            grad_accum=self.grad_accum.value(), block_size=self.block_size.value(),
                            lora_rank=self.lora_rank.value(), lora_alpha=self.lora_alpha.value(),
                            lora_targets=list(self.lora_targets.currentData()),
                            eval_every=self.eval_every.value(), early_stop=self.early_stop.value(),
                            save_every=self.save_every.value(), seed=self.seed.value())

    def _process(self, options: TrainOptions, dry_run: bool) -> Optional[TrainingProcess]:
        try:
            command = self.command_builder(options, dry_run)
        except (ValueError, OSError) as exc:
            self._set_status(_tr("Cannot start: {reason}").format(reason=str(exc)), failed=True)
            return None
        process = TrainingProcess(command, self, grace_s=self.grace_s)
        process.output.connect(self.log_view.appendPlainText)
        process.ingest.connect(self.show_ingest_report)
        process.estimate.connect(self._on_estimate)
        process.dataset.connect(self._on_dataset)
        return process

    @Slot()
    def estimate(self) -> None:
        """A `--dry-run`: reads the documents and sizes the run without training."""
        options = None if self.process is not None or self.estimator is not None else self._checked_options()
        if options is None:
            return
        self.estimator = self._process(options, dry_run=True)
        if self.estimator is None:
            return
        self.estimator.ended.connect(self._on_estimate_ended)
        self.estimate_label.setText(_tr("Estimating…"))
        self.estimator.start()
        self._update_state()

    @Slot()
    def start(self) -> None:
        options = None if self.process is not None or self.estimator is not None else self._checked_options()
        if options is None:
            return
        self.chart.clear()
        self.ppl_before = self.ppl_after = None
        self.checkpoint, self.checkpoint_step = None, 0
        self.ppl_label.setText("")
        self.log_view.clear()
        self._launch(options)

    @Slot()
    def resume(self) -> None:
        if self.process is not None or self.run_options is None or self.checkpoint is None:
            return
        options = dataclasses.replace(self.run_options, resume_from=Path(self.checkpoint))
        self.chart.truncate_after(self.checkpoint_step)
        self._launch(options)

    def _launch(self, options: TrainOptions) -> None:
        process = self._process(options, dry_run=False)
        if process is None:
            return
        self.run_options = options
        self.process = process
        process.stepped.connect(self._on_step)
        process.evaluated.connect(self._on_eval)
        process.checkpointed.connect(self._on_checkpoint)
        process.ended.connect(self._on_ended)
        self.last_status = "running"
        self.progress.setRange(0, 0)  # busy until the first step says how many there are
        self.progress.setFormat(_tr("Preparing…"))
        self.details_label.setText("")
        self._set_status(_tr("Reading documents and loading the model…"))
        process.start()
        self._update_state()

    @Slot()
    def cancel(self) -> None:
        for process in (self.process, self.estimator):
            if process is not None:
                process.cancel()
        if self.process is not None:
            self._set_status(_tr("Cancelling: saving a checkpoint…"))

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """For the window's close: cancel (the child checkpoints), wait a bounded time, then kill."""
        self._preview_cancel.set()
        if self.exporter is not None:
            self.exporter.kill()  # a half-written export folder is no use; the adapter is untouched
        for process in (self.process, self.estimator):
            if process is not None and process.is_running():
                process.cancel()
                if not process.wait(timeout_s):
                    process.process.kill()
                    process.wait(2.0)
        self.pool.clear()
        self.pool.waitForDone(5000)

    # -- events from the run ----------------------------------------------------------------------
    @Slot(dict)
    def _on_estimate(self, event: dict) -> None:
        memory, available = event.get("memory_bytes"), event.get("available_bytes")
        parts = []
        if isinstance(memory, (int, float)):
            parts.append(_tr("needs about {memory} of memory").format(memory=human_bytes(memory)))
            if isinstance(available, (int, float)) and available > 0:
                parts[-1] += _tr(" ({available} available)").format(available=human_bytes(available))
        if event.get("total_steps"):
            self.chart.set_total_steps(int(event["total_steps"]))
        if isinstance(event.get("eta_s"), (int, float)):
            parts.append(_tr("takes about {eta}").format(eta=format_eta(event["eta_s"])))
        text = _tr("Estimate: {details}.").format(details=", ".join(parts) or "?")
        too_big = event.get("fits") is False or (isinstance(memory, (int, float))
                                                 and isinstance(available, (int, float)) and 0 < available < memory)
        if too_big:
            text += " " + _tr("This will likely run out of memory: use LoRA, a smaller batch size "
                              "or a shorter block size.")
        self.estimate_label.setStyleSheet("color: #c0392b;" if too_big else "")
        self.estimate_label.setText(text)

    @Slot(dict)
    def _on_dataset(self, event: dict) -> None:
        text = _tr("{train} tokens to train on, {val} held out for validation.").format(
            train=event.get("train_tokens", "?"), val=event.get("val_tokens", "?"))
        if not event.get("val_blocks"):
            text += " " + _tr("Too little text is held out to measure perplexity.")
        self.details_label.setText(text)

    @Slot(str, str, dict)
    def _on_estimate_ended(self, status: str, reason: str, _info: dict) -> None:
        estimator, self.estimator = self.estimator, None
        if estimator is not None:
            estimator.deleteLater()
        if status == "failed":
            self.estimate_label.setStyleSheet("color: #c0392b;")
            self.estimate_label.setText(_tr("Estimate failed: {reason}").format(reason=reason))
        elif status == "cancelled":
            self.estimate_label.setText(_tr("Estimate cancelled."))
        self._update_state()

    @Slot(dict)
    def _on_step(self, event: dict) -> None:
        step = int(event.get("step") or 0)
        total = int(event.get("max_steps") or event.get("total_steps") or 0)
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.chart.set_total_steps(total)
        self.progress.setFormat(_tr("Step {step} of {total} · about {eta} left").format(
            step=step, total=total or "?", eta=format_eta(event.get("eta_s"))))
        loss = event.get("loss")  # null in JSON when it was NaN
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            self.chart.add_loss(step, loss)
            self.details_label.setText(_tr("loss {loss:.4f} · {speed:,.0f} tokens/s · lr {lr:.2e}").format(
                loss=loss, speed=event.get("tokens_per_s") or 0, lr=event.get("lr") or 0.0))
        else:
            self.details_label.setText(_tr("The loss is not a number: training has diverged; "
                                           "try a lower learning rate."))
        self._set_status(_tr("Training…"))

    @Slot(dict)
    def _on_eval(self, event: dict) -> None:
        ppl = event.get("val_ppl")
        if not isinstance(ppl, (int, float)) or not math.isfinite(ppl):
            return
        self.chart.add_eval(int(event.get("step") or 0), ppl)
        if self.ppl_before is None:
            self.ppl_before = float(ppl)
        else:
            self.ppl_after = float(ppl)
        self._show_ppl()

    @Slot(dict)
    def _on_checkpoint(self, event: dict) -> None:
        if event.get("path"):
            self.checkpoint = str(event["path"])
            self.checkpoint_step = int(event.get("step") or 0)

    def _show_ppl(self) -> None:
        if self.ppl_before is None:
            return
        text = _tr("Perplexity on held-out text: before {before:.2f}").format(before=self.ppl_before)
        if self.ppl_after is not None:
            change = (self.ppl_after / self.ppl_before - 1) * 100
            text += _tr(", after {after:.2f} ({change:+.0f}%)").format(after=self.ppl_after, change=change)
        self.ppl_label.setText(text)

    @Slot(str, str, dict)
    def _on_ended(self, status: str, reason: str, info: dict) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.deleteLater()
        self.last_status = status
        for key, attr in (("val_ppl_before", "ppl_before"), ("val_ppl_after", "ppl_after")):
            value = info.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                setattr(self, attr, float(value))
        self._show_ppl()
        out = str(info.get("out") or (self.run_options.out_dir if self.run_options else ""))
        if status != "completed" and info.get("checkpoint"):  # a cancelled run names its checkpoint
            self.checkpoint = str(info["checkpoint"])
            self.checkpoint_step = int(info.get("checkpoint_step") or info.get("step") or self.checkpoint_step)
        if status != "completed" and self.checkpoint is None and self.run_options is not None:
            self.checkpoint, self.checkpoint_step = find_checkpoint(self.run_options.out_dir)
        resumable = _tr(" A checkpoint at step {step} was kept: Resume continues from it.").format(
            step=self.checkpoint_step) if self.checkpoint else ""
        if status == "completed":
            self.progress.setRange(0, max(1, self.progress.maximum()))
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat(_tr("Completed"))
            message = _tr("Completed. Saved to {out}").format(out=out)
            if reason == "early_stop":
                message = _tr("Stopped early at step {step}: held-out perplexity stopped improving.").format(
                    step=info.get("step")) + " " + message
            if isinstance(info.get("restored_step"), int):
                message += _tr(" (the weights of step {step}, the lowest held-out perplexity)").format(
                    step=info["restored_step"])
            self._set_status(message)
            self.refresh_adapters()
        elif status == "cancelled":
            self._stop_progress(_tr("Cancelled"))
            self._set_status(_tr("Cancelled") + (f": {reason}" if reason else "") + "." + resumable)
        else:
            self._stop_progress(_tr("Failed"))
            self._set_status(_tr("Failed: {reason}").format(reason=reason or _tr("unknown error")) + resumable,
                             failed=True)
        self._update_state()
        self.training_finished.emit(status, out)

    def _stop_progress(self, label: str) -> None:
        if self.progress.maximum() == 0:  # still the busy indicator
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.progress.setFormat(label + " · %v / %m")

    def _set_status(self, text: str, failed: bool = False) -> None:
        self.status_label.setStyleSheet("color: #c0392b;" if failed else "")
        self.status_label.setText(text)

    # -- adapters ---------------------------------------------------------------------------------
    @Slot()
    def refresh_adapters(self) -> None:
        self._scan_ticket += 1
        root = self.adapters_dir
        self.pool.start(Job(self._scan_ticket, lambda: scan_adapters(root), self.scan_signals))

    @Slot(int, object)
    def _on_scan_done(self, ticket: int, rows: list) -> None:
        if ticket == self._scan_ticket:
            self.adapters = rows
            self._fill_adapters()

    @Slot(int, str)
    def _on_scan_failed(self, ticket: int, message: str) -> None:
        log.warning("scanning adapters failed: %s", message)

    def _fill_adapters(self) -> None:
        selected = (self._selected_adapter() or {}).get("path")
        newest = self.run_options.out_dir if self.run_options and self.last_status == "completed" else None
        self.adapters_table.setRowCount(len(self.adapters))
        for row, entry in enumerate(self.adapters):
            name = entry["name"] + (_tr(" (in use)") if entry["path"] == self.active_adapter else "")
            if entry["kind"] == "model":
                name += _tr(" (full model)")
            if entry["error"]:
                name += _tr(" (damaged)")
            ppl = entry.get("val_ppl")
            cells = (name, Path(entry["base_model"]).name if entry["base_model"] else "",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["date"])),
                     f"{ppl:.2f}" if isinstance(ppl, float) else "—")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, row)
                item.setToolTip(entry["error"] or entry["path"])
                self.adapters_table.setItem(row, column, item)
            if entry["path"] == selected or (newest is not None and Path(entry["path"]).is_relative_to(newest)):
                self.adapters_table.selectRow(row)
        self._update_state()

    def _selected_adapter(self) -> Optional[dict]:
        rows = self.adapters_table.selectionModel().selectedRows() if self.adapters_table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.adapters):
            return None
        return self.adapters[rows[0].row()]

    @Slot()
    def chat_with_selected(self) -> None:
        entry = self._selected_adapter()
        if entry is None or entry["error"]:
            return
        if entry["kind"] == "model":
            self.use_model.emit(entry["path"])
        else:
            self.use_adapter.emit(entry["path"])

    @Slot()
    def open_compare(self) -> None:
        entry = self._selected_adapter()
        if entry is None or entry["kind"] != "adapter" or entry["error"]:
            return
        self.compare_view.set_adapter(entry["path"], entry["name"])
        self.compare_view.show()
        self.compare_view.raise_()

    @Slot(str, int)
    def _forward_compare(self, prompt: str, seed: int) -> None:
        self.compare_requested.emit(prompt, seed, self.compare_view.adapter_path)

    # -- export ---------------------------------------------------------------------------------------
    def _ask_export_parent(self, start: Path) -> Optional[Path]:
        folder = QFileDialog.getExistingDirectory(self, _tr("Export the merged model into"), str(start))
        return Path(folder) if folder else None

    @Slot()
    def export_selected(self) -> None:
        """Merge the selected adapter into its base model and write a model folder (a child process)."""
        entry = self._selected_adapter()
        if entry is None or entry["kind"] != "adapter" or entry["error"] or self.exporter is not None:
            return
        parent = self.choose_export_parent(self.adapters_dir)
        if parent is None:
            return
        out = free_folder(parent / f"{entry['name']}-merged")
        command = build_export_command(entry["base_model"] or "default", entry["path"], out, self.export_prefix)
        self.exporter = ExportProcess(command, out, self)
        self.exporter.finished.connect(self._on_exported)
        self._set_status(_tr("Exporting {name} merged into its base model to {out}…").format(
            name=entry["name"], out=out))
        self.exporter.start()
        self._update_state()

    @Slot(bool, str)
    def _on_exported(self, ok: bool, message: str) -> None:
        exporter, self.exporter = self.exporter, None
        if exporter is not None:
            exporter.deleteLater()
        if ok:
            self._set_status(_tr("Exported to {out}. Open it as a model with Open folder… in the chat's "
                                 "model panel.").format(out=message))
            self.refresh_adapters()  # listed here when written under the adapters folder
        else:
            self._set_status(_tr("Export failed: {reason}").format(reason=message), failed=True)
        self._update_state()

    @Slot()
    def open_selected_folder(self) -> None:
        entry = self._selected_adapter()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(entry["path"]))


def _local_paths(mime) -> list[Path]:
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
