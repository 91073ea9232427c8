"""The model the chat uses: load (with an adapter), cancel a load, estimate before loading.

Lives in the GUI thread and talks to the generation worker by queued signals; views
(the settings panel, the status bar, the Train tab) follow its signals and never reach into
the worker. No widgets here, so tests drive it with a fake backend alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from ..engine.backend import LoadOptions, ModelEstimate, ModelInfo
from ..storage.settings import AppSettings, SettingsStore
from .worker import WorkerThread

log = logging.getLogger(__name__)

# Loader stages that report how far they are; the others (reading the config, which for a
# GGUF means parsing its whole vocabulary and took over half of the default model's load
# here, the tokenizer, building the engine) report only that they started: the bar shows
# them as busy rather than a made-up percentage.
MEASURED_STAGES = ("weights", "compile")
BUSY = -1.0  # a progress fraction meaning "under way, amount unknown"


def _tr(text: str) -> str:
    return QCoreApplication.translate("ModelController", text)


def stage_text(stage: str) -> str:
    """A loader stage in the user's words."""
    return {"config": _tr("Reading the model's settings"), "weights": _tr("Reading the weights"),
            "tokenizer": _tr("Preparing the tokenizer"), "adapter": _tr("Putting on the adapter"),
            "ready": _tr("Preparing to chat"), "engine": _tr("Preparing to chat"),
            "compile": _tr("Compiling the decode step (minutes the first time, seconds after)")}.get(stage, stage)


class ModelController(QObject):
    request_load = Signal(str, object)  # spec, LoadOptions (to the worker)
    request_estimate = Signal(str, object)  # spec, LoadOptions (to the worker)

    loading = Signal(str, str)  # spec, its display name: a load has started
    progress = Signal(str, float)  # stage in words, fraction of that stage (BUSY: not measured)
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str, str)  # spec, message (the previous model is kept)
    load_cancelled = Signal(str)  # spec
    estimated = Signal(str, object)  # spec, ModelEstimate
    estimate_failed = Signal(str, str)  # spec, message
    state_changed = Signal()  # loading started or ended
    status_message = Signal(str, int)  # text, milliseconds

    def __init__(self, worker_thread: WorkerThread, settings: AppSettings, settings_store: SettingsStore,
                 display_name: Callable[[str], str] = lambda spec: spec,
                 on_model_loaded: Optional[Callable[[str], None]] = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker_thread = worker_thread
        self.settings = settings
        self.settings_store = settings_store
        self.display_name = display_name
        self.on_model_loaded = on_model_loaded
        self.info: Optional[ModelInfo] = None
        self.loading_spec: Optional[str] = None
        self._remember = True  # whether the load in progress becomes the saved choice
        self.busy: Callable[[], bool] = lambda: False  # e.g. a reply streaming; set by the owner
        worker = worker_thread.worker
        self.request_load.connect(worker.load_model)
        self.request_estimate.connect(worker.estimate)
        worker.load_progress.connect(self._on_progress)
        worker.model_loaded.connect(self._on_loaded)
        worker.model_failed.connect(self._on_failed)
        worker.model_load_cancelled.connect(self._on_cancelled)
        worker.estimated.connect(self._on_estimated)
        worker.estimate_failed.connect(self._on_estimate_failed)

    # -- state ----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """A model is loaded and no other load is under way."""
        return self.info is not None and self.loading_spec is None

    @property
    def adapter(self) -> str:
        """The adapter folder the loaded model wears, "" for none."""
        return self.info.adapter if self.info else ""

    def weights_for(self, spec: str) -> str:
        """The weights option `spec` loads with: its own choice in the picker, else the settings'."""
        return self.settings.model_weights.get(spec, self.settings.weights)

    def set_weights(self, spec: str, option: str) -> None:
        """The picker's choice for `spec` (saved; used at its next load), and a new estimate for it."""
        if not spec or self.settings.model_weights.get(spec) == option:
            return
        self.settings.model_weights = {**self.settings.model_weights, spec: option}
        self.settings_store.save(self.settings)
        self.estimate(spec)

    def _options(self, spec: str, adapter: str = "") -> LoadOptions:
        s = self.settings
        return LoadOptions(device=s.device, context_len=s.context_len, threads=s.threads, adapter=adapter or None,
                           weights=self.weights_for(spec))

    # -- requests -------------------------------------------------------------------------
    def load(self, spec: str, adapter: Optional[str] = None, remember: bool = True) -> bool:
        """Load `spec` with `adapter` ("" none, None: the current one if `spec` is the current model);
        False if refused.

        `remember=False` loads for a moment (a comparison) without making it the saved choice.
        """
        if not spec or self.loading_spec is not None:
            return False
        if self.busy():
            self.status_message.emit(_tr("Stop the reply before switching models."), 5000)
            return False
        if adapter is None:  # an adapter fits the base it was trained on: kept only for the same model
            adapter = self.adapter if spec == self.settings.model else ""
        self.loading_spec = spec
        self._remember = remember
        self.worker_thread.arm_load()
        self.loading.emit(spec, self.display_name(spec))
        self.state_changed.emit()
        self.request_load.emit(spec, self._options(spec, adapter))
        return True

    def load_saved(self) -> bool:
        """At start-up: the saved model with its saved adapter (left off, and said, if it is gone)."""
        adapter = self.settings.adapter
        if adapter and not Path(adapter).is_dir():
            self.status_message.emit(
                _tr("The adapter {path} is no longer there; the model was loaded without it.").format(path=adapter),
                15000)
            adapter = ""
        return self.load(self.settings.model, adapter=adapter)

    def cancel(self) -> None:
        """Stop the model load at the next tensor; the previous model stays."""
        if self.loading_spec is not None:
            self.worker_thread.cancel_load()

    def estimate(self, spec: str) -> None:
        """Ask the worker what loading `spec` would need (it reads the config, not the weights); the
        loaded model's own spec with the adapter it wears, which its next load keeps (see load)."""
        if spec:
            self.request_estimate.emit(spec, self._options(spec, self.adapter if spec == self.settings.model else ""))

    def kept_sentence(self) -> str:
        """After a load that did not happen: which model is still loaded, if any."""
        if self.info is None:
            return ""
        return _tr(" The previous model ({name}) is still loaded.").format(name=self.info.name)

    # -- answers from the worker ----------------------------------------------------------
    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if self.loading_spec is not None:
            self.progress.emit(stage_text(stage), fraction if stage in MEASURED_STAGES else BUSY)

    @Slot(object)
    def _on_loaded(self, info: ModelInfo) -> None:
        spec, self.loading_spec = self.loading_spec, None
        self.info = info
        if self._remember and spec:
            self.settings.model = spec
            self.settings.adapter = info.adapter
            self.settings_store.save(self.settings)
            if self.on_model_loaded:
                self.on_model_loaded(spec)
        self.loaded.emit(info)
        self.state_changed.emit()

    @Slot(str, str)
    def _on_failed(self, spec: str, message: str) -> None:
        self.loading_spec = None
        self.load_failed.emit(spec, message)
        self.state_changed.emit()

    @Slot(str)
    def _on_cancelled(self, spec: str) -> None:
        self.loading_spec = None
        self.load_cancelled.emit(spec)
        self.state_changed.emit()

    @Slot(str, object)
    def _on_estimated(self, spec: str, estimate: ModelEstimate) -> None:
        self.estimated.emit(spec, estimate)

    @Slot(str, str)
    def _on_estimate_failed(self, spec: str, message: str) -> None:
        self.estimate_failed.emit(spec, message)
