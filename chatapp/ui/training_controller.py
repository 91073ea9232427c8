"""Connects the training panel to the chat: chat with an adapter, switch it off, compare.

It works through the chat and model controllers, never the window. Side by side runs in the
generation worker: one prompt, one seed, both panes streaming together, each from its own
source (base, an adapter of the loaded model, or another model that fits beside it). The
backend wears each pane's adapter in turn and puts the chat's own back, so comparing has no
side effect on the chat and needs no reload.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QGuiApplication

from ..engine.backend import CompareRequest, LoadOptions, ModelInfo
from .chat_controller import ChatController
from .model_controller import ModelController
from .training_panel import TrainingPanel
from .worker import WorkerThread

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingController", text)


class TrainingController(QObject):
    request_compare = Signal(object)  # CompareRequest (to the worker)
    request_compare_estimate = Signal(str, object)  # spec, LoadOptions (to the worker)
    status_message = Signal(str, int)  # text, milliseconds

    def __init__(self, chat: ChatController, model: ModelController, worker_thread: WorkerThread,
                 panel: TrainingPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.chat = chat
        self.model = model
        self.worker_thread = worker_thread
        self.panel = panel
        self.compare_id: Optional[int] = None
        worker = worker_thread.worker
        self.request_compare.connect(worker.compare)
        self.request_compare_estimate.connect(worker.compare_estimate)
        worker.compare_delta.connect(self._on_compare_delta)
        worker.compare_finished.connect(self._on_compare_finished)
        worker.compare_failed.connect(self._on_compare_failed)
        worker.compare_estimated.connect(panel.compare_view.show_fit)
        worker.compare_estimate_failed.connect(panel.compare_view.show_fit_error)
        panel.compare_view.fit_requested.connect(self.estimate_for_compare)
        panel.compare_view.stop_requested.connect(self.stop_compare)
        model.loaded.connect(self._on_model_loaded)
        panel.use_adapter.connect(self.use_adapter)
        panel.adapter_off.connect(self.adapter_off)
        panel.use_model.connect(self.use_model)
        panel.compare_requested.connect(self.compare)
        panel.training_finished.connect(self._on_training_finished)

    @Slot(str)
    def use_adapter(self, path: str) -> None:
        self.model.load(self.model.settings.model, adapter=path)

    @Slot()
    def adapter_off(self) -> None:
        if self.model.adapter:
            self.model.load(self.model.settings.model, adapter="")

    @Slot(str)
    def use_model(self, spec: str) -> None:
        self.model.load(spec, adapter="")

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.panel.set_model(self.model.settings.model, info.name,
                             info.weights if info.weights in ("int8", "int4") else "float")
        self.panel.set_active_adapter(info.adapter)
        self.panel.compare_view.fits.clear()  # "fits beside the loaded model" was for the one before
        self.panel.compare_view.fit_text.clear()
        self.panel.compare_view.set_sources(self.panel.compare_view.sources())

    @Slot(str)
    def estimate_for_compare(self, spec: str) -> None:
        """Another model for a pane: what it needs (config only), on the loaded model's device and context."""
        info = self.model.info
        options = LoadOptions(device=info.device, context_len=info.context_len) if info else LoadOptions()
        self.request_compare_estimate.emit(spec, options)

    @Slot(str, int, object)
    def compare(self, prompt: str, seed: int, sources: tuple) -> None:
        view = self.panel.compare_view
        if self.model.info is None:
            view.show_error(_tr("Load a model first."))
            return
        if self.chat.streaming or self.model.loading_spec is not None or self.compare_id is not None:
            view.show_error(_tr("Wait for the current reply or model load to finish."))
            return
        self.compare_id = self.worker_thread.next_request_id()
        self.chat.set_paused(True)
        settings = self.chat.sampling()
        settings["seed"] = seed
        for pane in range(2):
            view.show_text(pane, "")
        view.set_running(True)
        self.request_compare.emit(CompareRequest(self.compare_id, prompt, self.chat.system_prompt(), settings,
                                                 tuple(sources)))

    @Slot()
    def stop_compare(self) -> None:
        if self.compare_id is not None:
            self.worker_thread.stop_reply()

    def _compare_done(self) -> None:
        self.compare_id = None
        self.chat.set_paused(False)

    @Slot(int, int, str)
    def _on_compare_delta(self, request_id: int, pane: int, text: str) -> None:
        if request_id == self.compare_id:
            self.panel.compare_view.append(pane, text)

    @Slot(int, object)
    def _on_compare_finished(self, request_id: int, replies: list) -> None:
        if request_id == self.compare_id:
            self.panel.compare_view.finish(replies)
            self._compare_done()

    @Slot(int, str)
    def _on_compare_failed(self, request_id: int, message: str) -> None:
        if request_id == self.compare_id:
            self.panel.compare_view.show_error(message)
            self._compare_done()

    @Slot(str, str)
    def _on_training_finished(self, status: str, out_dir: str) -> None:
        # the run's folder name: the status bar is one line, and the Train tab shows the whole path
        words = {"completed": _tr("Training completed: {name}"), "cancelled": _tr("Training cancelled: {name}")}
        text = words.get(status, _tr("Training failed: {name}"))
        self.status_message.emit(text.format(name=Path(out_dir).name if out_dir else ""), 15000)
