"""The generation worker: one QThread owns the loaded model; the GUI talks to it by signals.

The GUI thread never runs model code and never waits on the worker. Requests arrive as
queued signals; replies leave as `delta` / `finished` / `failed` signals. Stop is a
threading.Event the GUI sets directly (the worker is busy in its loop and checks it every
token), so it lands within one token.
"""

from __future__ import annotations

import logging
import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..engine.backend import ChatBackend, LoadOptions
from ..errors import Cancelled

log = logging.getLogger(__name__)


class GenerationWorker(QObject):
    """Lives in its own thread. Slots run there; signals are delivered to the GUI thread."""

    load_progress = Signal(str, float)  # stage, fraction
    model_loaded = Signal(dict)  # ModelInfo as a dict
    model_failed = Signal(str, str)  # spec, message
    model_load_cancelled = Signal(str)  # spec
    delta = Signal(int, str)  # request id, new text
    finished = Signal(int, dict)  # request id, {"text", "finish_reason", "stats", "dropped_messages", "contained_markers"}
    failed = Signal(int, str)  # request id, message
    estimated = Signal(str, dict)  # spec, estimate (see engine.loader.estimate_model)
    estimate_failed = Signal(str, str)  # spec, message
    compare_delta = Signal(int, str, str)  # request id, "base" | "tuned", new text
    compare_finished = Signal(int)  # request id

    def __init__(self, backend: ChatBackend) -> None:
        super().__init__()
        self.backend = backend
        self.cancel = threading.Event()  # stops a reply
        self.load_cancel = threading.Event()  # stops a model load, at the next tensor

    @Slot(str, dict)
    def load_model(self, spec: str, options: dict) -> None:
        """Load `spec`; `load_cancel` (cleared by the GUI before it asks) stops it at the next tensor."""

        def progress(stage: str, fraction: float) -> None:
            if self.load_cancel.is_set():
                raise Cancelled(f"loading {spec} was cancelled")
            self.load_progress.emit(stage, fraction)

        try:
            info = self.backend.load(spec, LoadOptions(**options), progress=progress)
        except Cancelled:  # the previous model stays loaded
            log.info("loading %s cancelled", spec)
            self.model_load_cancelled.emit(spec)
            return
        except Exception as exc:  # any failure is shown; the previous model stays loaded
            log.warning("loading %s failed: %s", spec, exc)
            log.debug("%s", traceback.format_exc())
            self.model_failed.emit(spec, str(exc))
            return
        self.model_loaded.emit(info.to_dict())

    @Slot(str, dict)
    def estimate(self, spec: str, options: dict) -> None:
        """Read the model's config (not its weights) and say what loading it would need."""
        try:
            result = self.backend.estimate(spec, LoadOptions(**options))
        except Exception as exc:
            self.estimate_failed.emit(spec, str(exc))
            return
        self.estimated.emit(spec, result)

    @Slot(int, list, str, dict, bool)
    def generate(self, request_id: int, messages: list, system_prompt: str, settings: dict,
                 continue_last: bool = False) -> None:
        """Reply to `messages`; with `continue_last`, write on from the end of the last reply
        (the deltas and the finished text are then the new part only)."""
        self.cancel.clear()
        try:
            from ..engine.sampling import SamplingSettings  # torch loads here, in this thread

            sampling = SamplingSettings(**settings)
            extra = {"continue_last": True} if continue_last else {}
            for text in self.backend.stream(messages, system_prompt, sampling, self.cancel, **extra):
                self.delta.emit(request_id, text)
            reply = self.backend.reply
            self.finished.emit(request_id, {
                "text": reply.text,
                "finish_reason": reply.finish_reason,
                "stats": reply.stats.to_dict(),
                "dropped_messages": self.backend.dropped_messages,
                "contained_markers": getattr(self.backend, "contained_markers", False),  # read as text
                "context_used": self.backend.context_used(),
            })
        except Exception as exc:
            log.warning("generation failed: %s", exc)
            log.debug("%s", traceback.format_exc())
            self.failed.emit(request_id, str(exc))


    @Slot(int, str, str, dict)
    def compare(self, request_id: int, prompt: str, system_prompt: str, settings: dict) -> None:
        """Reply to `prompt` with the adapter off, then on, with the same settings and seed."""
        self.cancel.clear()
        try:
            from ..engine.sampling import SamplingSettings

            sampling = SamplingSettings(**settings)
            messages = [{"role": "user", "content": prompt}]
            for which, enabled in (("base", False), ("tuned", True)):
                self.backend.set_adapter_enabled(enabled)
                for text in self.backend.stream(messages, system_prompt, sampling, self.cancel):
                    self.compare_delta.emit(request_id, which, text)
            self.compare_finished.emit(request_id)
        except Exception as exc:
            log.warning("comparison failed: %s", exc)
            self.failed.emit(request_id, str(exc))
        finally:
            if getattr(self.backend, "has_adapter", False):
                self.backend.set_adapter_enabled(True)


class WorkerThread(QObject):
    """Owns the QThread and the worker; `shutdown()` stops a reply and joins the thread."""

    def __init__(self, backend: ChatBackend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("generation")
        self.worker = GenerationWorker(backend)
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop_reply(self) -> None:
        self.worker.cancel.set()

    def cancel_load(self) -> None:
        self.worker.load_cancel.set()

    def arm_load(self) -> None:
        """Before a load is requested: a cancel from now on (even before it starts) stops it."""
        self.worker.load_cancel.clear()

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Cancel any reply or model load, end the thread's event loop, and wait for it (bounded)."""
        self.worker.cancel.set()
        self.worker.load_cancel.set()
        self.thread.quit()
        finished = self.thread.wait(int(timeout_s * 1000))
        if not finished:
            log.error("generation thread did not stop within %.0f s", timeout_s)
        return finished
