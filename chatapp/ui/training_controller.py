"""Connects the training panel to the chat: chat with an adapter, switch it off, compare.

The comparison runs in the generation worker: the same prompt and seed, first with the
adapter switched off (the base model), then on, streamed into the panel's compare view.
"""

from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QGuiApplication

from .training_panel import TrainingPanel

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingController", text)


class TrainingController(QObject):
    request_compare = Signal(int, str, str, dict)

    def __init__(self, window, panel: TrainingPanel) -> None:
        super().__init__(window)
        self.window = window
        self.panel = panel
        self.pending_compare: Optional[tuple[str, int]] = None
        self.compare_id = 0
        worker = window.worker_thread.worker
        self.request_compare.connect(worker.compare)
        worker.compare_delta.connect(self._on_compare_delta)
        worker.compare_finished.connect(self._on_compare_finished)
        worker.failed.connect(self._on_failed)
        panel.use_adapter.connect(self.use_adapter)
        panel.adapter_off.connect(self.adapter_off)
        panel.use_model.connect(window.load_model)
        panel.compare_requested.connect(self.compare)
        panel.training_finished.connect(self._on_training_finished)

    @Slot(str)
    def use_adapter(self, path: str) -> None:
        self.window.load_model(self.window.settings.model, adapter=path)

    @Slot()
    def adapter_off(self) -> None:
        self.window.load_model(self.window.settings.model, adapter="")

    def model_loaded(self, spec: str, info: dict) -> None:
        """Called by the window after every successful load."""
        self.panel.set_model(spec, info["name"])
        self.panel.set_active_adapter(info.get("adapter", ""))
        if self.pending_compare is not None:
            prompt, seed = self.pending_compare
            self.pending_compare = None
            self._run_compare(prompt, seed)

    @Slot(str, int, str)
    def compare(self, prompt: str, seed: int, adapter: str) -> None:
        if self.window.streaming or self.window.loading_spec is not None:
            self.panel.compare_view.show_error(_tr("Wait for the current reply or model load to finish."))
            return
        info = self.window.model_info or {}
        if info.get("adapter", "") != adapter:
            self.pending_compare = (prompt, seed)  # load the adapter first, then compare
            self.use_adapter(adapter)
            return
        self._run_compare(prompt, seed)

    def _run_compare(self, prompt: str, seed: int) -> None:
        self.compare_id += 1
        settings = self.window.sampling_dict()
        settings["seed"] = seed
        self.panel.compare_view.show_base("")
        self.panel.compare_view.show_tuned("")
        self.panel.compare_view.set_running(True)
        self.request_compare.emit(self.compare_id, prompt, self.window.settings.system_prompt, settings)

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

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        # chat replies and comparisons share the worker's failure signal; ids are per kind
        if self.panel.compare_view.isVisible() and request_id == self.compare_id:
            self.panel.compare_view.set_running(False)
            self.panel.compare_view.show_error(message)

    @Slot(str, str)
    def _on_training_finished(self, status: str, out_dir: str) -> None:
        self.window.statusBar().showMessage(
            _tr("Training {status}: {out}").format(status=status, out=out_dir), 15000)
