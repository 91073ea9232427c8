"""Connects the training panel to the chat: chat with an adapter, switch it off, compare.

It works through the chat and model controllers, never the window. The comparison runs in
the generation worker: the same prompt and seed, first with the adapter switched off (the
base model), then on, streamed into the panel's compare view. Comparing has no side effect
on the chat: when the adapter compared is not the one the chat wears, it is loaded for the
comparison and the chat's own adapter is put back afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QGuiApplication

from ..engine.backend import CompareRequest, ModelInfo
from .chat_controller import ChatController
from .model_controller import ModelController
from .training_panel import TrainingPanel
from .worker import WorkerThread

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingController", text)


@dataclass(frozen=True)
class _PendingCompare:
    prompt: str
    seed: int
    adapter: str
    restore: Optional[str]  # the chat's adapter to put back afterwards; None: nothing to put back


class TrainingController(QObject):
    request_compare = Signal(object)  # CompareRequest (to the worker)
    status_message = Signal(str, int)  # text, milliseconds

    def __init__(self, chat: ChatController, model: ModelController, worker_thread: WorkerThread,
                 panel: TrainingPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.chat = chat
        self.model = model
        self.worker_thread = worker_thread
        self.panel = panel
        self.pending: Optional[_PendingCompare] = None  # waiting for its adapter to load
        self.restore: Optional[str] = None  # after the running comparison, load the chat's adapter back
        self.compare_id: Optional[int] = None
        worker = worker_thread.worker
        self.request_compare.connect(worker.compare)
        worker.compare_delta.connect(self._on_compare_delta)
        worker.compare_finished.connect(self._on_compare_finished)
        worker.compare_failed.connect(self._on_compare_failed)
        model.loaded.connect(self._on_model_loaded)
        model.load_failed.connect(self._on_load_failed)
        model.load_cancelled.connect(self._on_load_cancelled)
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
        self.panel.set_active_adapter(self.model.settings.adapter if self.pending or self.restore else info.adapter)
        if self.pending is not None:
            pending, self.pending = self.pending, None
            if info.adapter == pending.adapter:
                self.restore = pending.restore
                self._run_compare(pending.prompt, pending.seed)

    @Slot(str, str)
    def _on_load_failed(self, _spec: str, message: str) -> None:
        if self.pending is not None:
            self.pending = None
            self.panel.compare_view.show_error(message)

    @Slot(str)
    def _on_load_cancelled(self, _spec: str) -> None:
        if self.pending is not None:
            self.pending = None
            self.panel.compare_view.show_error(_tr("The adapter was not loaded."))

    @Slot(str, int, str)
    def compare(self, prompt: str, seed: int, adapter: str) -> None:
        if self.chat.streaming or self.model.loading_spec is not None or self.compare_id is not None:
            self.panel.compare_view.show_error(_tr("Wait for the current reply or model load to finish."))
            return
        if self.model.adapter != adapter:
            # load the adapter for the comparison only, then give the chat its own back
            self.pending = _PendingCompare(prompt, seed, adapter, restore=self.model.adapter)
            if not self.model.load(self.model.settings.model, adapter=adapter, remember=False):
                self.pending = None
            return
        self._run_compare(prompt, seed)

    def _run_compare(self, prompt: str, seed: int) -> None:
        self.compare_id = self.worker_thread.next_request_id()
        self.chat.set_paused(True)
        settings = self.chat.sampling()
        settings["seed"] = seed
        view = self.panel.compare_view
        view.show_base("")
        view.show_tuned("")
        view.set_running(True)
        self.request_compare.emit(CompareRequest(self.compare_id, prompt, self.chat.system_prompt(), settings))

    def _compare_done(self) -> None:
        self.compare_id = None
        self.chat.set_paused(False)
        restore, self.restore = self.restore, None
        if restore is not None:
            self.model.load(self.model.settings.model, adapter=restore)

    @Slot(int, str, str)
    def _on_compare_delta(self, request_id: int, which: str, text: str) -> None:
        if request_id != self.compare_id:
            return
        view = self.panel.compare_view
        (view.append_base if which == "base" else view.append_tuned)(text)

    @Slot(int)
    def _on_compare_finished(self, request_id: int) -> None:
        if request_id == self.compare_id:
            self.panel.compare_view.set_running(False)
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
