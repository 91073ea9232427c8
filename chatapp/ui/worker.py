"""The generation worker: one QThread owns the loaded model; the GUI talks to it by signals.

The GUI thread never runs model code and never waits on the worker. Requests arrive as
queued signals carrying typed payloads (`ReplyRequest`, `CompareRequest`); results leave as
signals carrying dataclasses (`ModelInfo`, `ModelEstimate`, `ReplyFinished`). Every request
takes its id from one sequence (`WorkerThread.next_request_id`), and chat replies and
comparisons fail on signals of their own, so one can never be taken for the other. Stop is
a threading.Event the GUI sets directly (the worker is busy in its loop and checks it every
token), so it lands within one token.
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..engine.backend import Backend, CompareRequest, LoadOptions, ReplyRequest, ScoreRequest, logprob_entry
from ..errors import Cancelled

log = logging.getLogger(__name__)


class GenerationWorker(QObject):
    """Lives in its own thread. Slots run there; signals are delivered to the GUI thread."""

    load_progress = Signal(str, float)  # stage, fraction of that stage
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str, str)  # spec, message
    model_load_cancelled = Signal(str)  # spec
    delta = Signal(int, str, int)  # request id, new text, context positions in use
    token_logprobs = Signal(int, object)  # request id, list of logprob_entry dicts of the new tokens
    finished = Signal(int, object)  # request id, ReplyFinished
    failed = Signal(int, str)  # request id of a chat reply, message
    estimated = Signal(str, object)  # spec, ModelEstimate
    estimate_failed = Signal(str, str)  # spec, message
    compare_delta = Signal(int, int, str)  # request id, pane (0 left, 1 right), new text
    compare_finished = Signal(int, object)  # request id, Backend.compared(): each pane's reply
    compare_failed = Signal(int, str)  # request id of a comparison, message
    compare_estimated = Signal(str, object)  # spec, ModelEstimate: may it stand beside the loaded model?
    compare_estimate_failed = Signal(str, str)  # spec, message
    score_progress = Signal(int, int, int)  # request id, tokens scored, of how many (both passes)
    score_finished = Signal(int, object)  # request id, list of engine.token_scores.TokenScore
    score_failed = Signal(int, str)  # request id, message ("cancelled" when stopped)
    image_costed = Signal(int, int)  # the composer's token for an image, context positions it fills
    image_cost_failed = Signal(int, str)  # that token, message

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.cancel = threading.Event()  # stops a reply
        self.load_cancel = threading.Event()  # stops a model load, at the next tensor
        self.score_cancel = threading.Event()  # stops scoring a text, at the next chunk

    @Slot(str, object)
    def load_model(self, spec: str, options: LoadOptions) -> None:
        """Load `spec`; `load_cancel` (cleared by the GUI before it asks) stops it at the next tensor."""

        def progress(stage: str, fraction: float) -> None:
            if self.load_cancel.is_set():
                raise Cancelled(f"loading {spec} was cancelled")
            self.load_progress.emit(stage, fraction)

        try:
            info = self.backend.load(spec, options, progress=progress)
        except Cancelled:  # the previous model stays loaded
            log.info("loading %s cancelled", spec)
            self.model_load_cancelled.emit(spec)
            return
        except Exception as exc:  # any failure is shown; the previous model stays loaded
            log.warning("loading %s failed: %s", spec, exc)
            log.debug("%s", traceback.format_exc())
            self.model_failed.emit(spec, str(exc))
            return
        self.model_loaded.emit(info)

    @Slot(str, object)
    def estimate(self, spec: str, options: LoadOptions) -> None:
        """Read the model's config (not its weights) and say what loading it would need."""
        try:
            result = self.backend.estimate(spec, options)
        except Exception as exc:
            self.estimate_failed.emit(spec, str(exc))
            return
        self.estimated.emit(spec, result)

    @Slot(object)
    def generate(self, request: ReplyRequest) -> None:
        """Reply to the request's messages; with `continue_last`, write on from the end of the
        last reply (the deltas and the finished text are then the new part only)."""
        self.cancel.clear()
        try:
            from ..engine.sampling import SamplingSettings  # torch loads here, in this thread

            sampling = SamplingSettings(**request.sampling)
            logprobs = request.logprobs  # the token view: each token's probabilities as they come
            sent = 0
            for text in self.backend.stream(request.messages, request.system_prompt, sampling, self.cancel,
                                            continue_last=request.continue_last, documents=request.documents,
                                            enable_thinking=request.enable_thinking, logprobs=logprobs,
                                            forced=request.forced):
                if logprobs is not None:
                    entries = self.backend.streamed_logprobs()
                    if len(entries) > sent:
                        self.token_logprobs.emit(request.request_id, [logprob_entry(e) for e in entries[sent:]])
                        sent = len(entries)
                self.delta.emit(request.request_id, text, self.backend.context_used())
            self.finished.emit(request.request_id, self.backend.finished())
        except Exception as exc:
            log.warning("generation failed: %s", exc)
            log.debug("%s", traceback.format_exc())
            self.failed.emit(request.request_id, str(exc))

    @Slot(object)
    def score(self, request: ScoreRequest) -> None:
        """What the fine-tune changed over `request.text` (backend.score_text), with progress."""
        from ..engine.token_scores import ScoringCancelled

        self.score_cancel.clear()
        try:
            scores = self.backend.score_text(
                request.text, cancel=self.score_cancel,
                progress=lambda done, total: self.score_progress.emit(request.request_id, done, total))
        except ScoringCancelled:
            self.score_failed.emit(request.request_id, "cancelled")
            return
        except Exception as exc:
            log.warning("scoring failed: %s", exc)
            self.score_failed.emit(request.request_id, str(exc))
            return
        self.score_finished.emit(request.request_id, scores)

    @Slot(int, object)
    def image_cost(self, token: int, image) -> None:
        """Context positions an attached image (data and name: ui.images.ReadyImage) fills for the loaded
        model (Backend.image_cost: it decodes the image, so here and not on the GUI thread)."""
        try:
            from ..engine.vision_prompt import message_images  # torch loads here, in this thread

            cost = self.backend.image_cost(message_images({"images": [image]})[0])
        except Exception as exc:  # a text-only model, a bad image, no model: the tray shows it
            log.info("image cost of %s: %s", getattr(image, "name", "image"), exc)
            self.image_cost_failed.emit(token, str(exc))
            return
        self.image_costed.emit(token, int(cost))

    @Slot(object)
    def compare(self, request: CompareRequest) -> None:
        """Side by side: both panes' replies with the same settings and seed, a step of each in
        turn (Backend.compare); the one stop flag ends both."""
        self.cancel.clear()
        try:
            from ..engine.sampling import SamplingSettings

            sampling = SamplingSettings(**request.sampling)
            messages = [{"role": "user", "content": request.prompt}]
            for pane, text in self.backend.compare(request.sources, messages, request.system_prompt, sampling,
                                                   self.cancel):
                self.compare_delta.emit(request.request_id, pane, text)
            self.compare_finished.emit(request.request_id, self.backend.compared())
        except Exception as exc:
            log.warning("comparison failed: %s", exc)
            log.debug("%s", traceback.format_exc())
            self.compare_failed.emit(request.request_id, str(exc))

    @Slot(str, object)
    def compare_estimate(self, spec: str, options: LoadOptions) -> None:
        """What another model for a pane would need (its config only): the view says whether it fits.
        Signals of its own, so the chat header never takes it for the chat model's estimate."""
        try:
            result = self.backend.estimate(spec, options)
        except Exception as exc:
            self.compare_estimate_failed.emit(spec, str(exc))
            return
        self.compare_estimated.emit(spec, result)


class WorkerThread(QObject):
    """Owns the QThread and the worker; `shutdown()` stops a reply and joins the thread."""

    def __init__(self, backend: Backend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("generation")
        self.worker = GenerationWorker(backend)
        self.worker.moveToThread(self.thread)
        self._ids = itertools.count(1)
        self.thread.start()

    def next_request_id(self) -> int:
        """Ids for replies and comparisons alike, from one sequence (GUI thread only)."""
        return next(self._ids)

    def stop_reply(self) -> None:
        self.worker.cancel.set()

    def stop_scoring(self) -> None:
        self.worker.score_cancel.set()

    def cancel_load(self) -> None:
        self.worker.load_cancel.set()

    def arm_load(self) -> None:
        """Before a load is requested: a cancel from now on (even before it starts) stops it."""
        self.worker.load_cancel.clear()

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Cancel any reply or model load, end the thread's event loop, and wait for it (bounded)."""
        self.worker.cancel.set()
        self.worker.load_cancel.set()
        self.worker.score_cancel.set()
        self.thread.quit()
        finished = self.thread.wait(int(timeout_s * 1000))
        if not finished:
            log.error("generation thread did not stop within %.0f s", timeout_s)
        return finished
