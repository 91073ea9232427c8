"""What runs in the model's thread for one API request, and the headless model thread.

A request becomes a `Job`: the validated `JobRequest`, its own cancel event (set when its
client disconnects; nothing else shares it) and an `emit(kind, payload)` that hands events
to the event loop ("prompt": `Outcome` so far, only with echo; "delta": `Delta`, then "done":
`Outcome`; or "error": `ApiError`). Jobs run
one after another on whatever thread owns the model: `ModelThread` here for `chatapp serve`,
the window's generation worker in the app (between its own replies). Both take
`submit(run)` with `run(backend)` called in that thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .protocol import ApiError, JobRequest

log = logging.getLogger(__name__)

Emit = Callable[[str, Any], None]


@dataclass
class Delta:
    text: str
    logprobs: list = field(default_factory=list)  # engine.logprobs.TokenLogprob of the tokens behind it


@dataclass
class Outcome:
    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    logprobs: list = field(default_factory=list)  # entries not yet sent with a delta
    prompt_logprobs: list = field(default_factory=list)  # echo: TokenLogprob of prompt tokens 1..
    prompt_ids: list = field(default_factory=list)
    prompt_text: str = ""
    sources: tuple = ()  # engine.retrieval.Source, with `documents`


FINISH = {"eos": "stop", "stop": "stop", "length": "length", "cancelled": "cancelled"}


@dataclass(eq=False)  # each job is its own: hashable by identity
class Job:
    request: JobRequest
    adapter: str  # the adapter folder this request runs with, "" for the bare model
    emit: Emit
    cancel: threading.Event = field(default_factory=threading.Event)
    library_db: Optional[str] = None  # the LibraryStore file for `documents` (None: the user's)

    def run(self, backend) -> None:
        """In the model's thread: generate and emit; never raises."""
        try:
            if self.cancel.is_set():  # its client left while it waited in the queue
                self.emit("done", Outcome("cancelled", 0, 0))
                return
            if getattr(backend, "engine", None) is None:
                raise ApiError(503, "no model is loaded", code="model_not_loaded", kind="server_error")
            with wearing(backend, self.adapter):
                self.emit("done", self._generate(backend))
        except ApiError as exc:
            self.emit("error", exc)
        except Exception as exc:  # a failed request answers 500 and leaves the server serving
            from ..engine.generate import ContextOverflowError
            from ..sampling_settings import SettingsError
            from ..text.chat_template import ChatTemplateError
            param = "messages" if self.request.kind == "chat" else "prompt"
            if isinstance(exc, ContextOverflowError):
                self.emit("error", ApiError(400, str(exc), param, code="context_length_exceeded"))
                return
            if isinstance(exc, (ChatTemplateError, SettingsError)):  # the request's content, not our fault
                self.emit("error", ApiError(400, str(exc), param if isinstance(exc, ChatTemplateError) else None))
                return
            log.exception("API request failed")
            self.emit("error", ApiError(500, f"generation failed: {exc}", kind="server_error"))

    @staticmethod
    def _chat_ids(backend, engine, messages: list[dict]) -> list[int]:
        """The chat prompt's ids; a user message's images through the engine's vision path
        (engine.vision), as the window's replies go: a text-only model refuses them with a 400."""
        from ..engine.vision import NoVisionError, VisionDecoder, render_with_images
        from ..text.images import ImageError
        from ..text.prompt import render_and_encode

        if isinstance(engine.model, VisionDecoder):
            try:
                prompt, placed = render_with_images(engine.model, engine.tokenizer, messages)
            except (ImageError, ValueError) as exc:  # a bad image, or a template that placed no marker
                raise ApiError(400, str(exc), "messages", code="invalid_image") from None
            engine.model.set_prompt(engine, prompt.ids, placed)
            return prompt.ids
        if any(m.get("images") for m in messages):
            info = getattr(backend, "info", None)
            raise ApiError(400, str(NoVisionError(info.name if info else "the loaded model")), "messages",
                           code="model_cannot_see_images")
        return render_and_encode(engine.tokenizer, messages, add_generation_prompt=True).ids

    def _generate(self, backend) -> Outcome:
        from ..engine.sampling import ApiSamplingSettings

        request = self.request
        settings = ApiSamplingSettings(**request.sampling)
        engine = backend.engine
        tokenizer = engine.tokenizer
        sources: tuple = ()
        if request.kind == "chat":
            messages = request.messages
            if request.documents is not None:
                messages, sources = self._with_documents(engine, settings)
            ids = self._chat_ids(backend, engine, messages)
        else:  # as `chatapp generate` encodes a prompt: as text, BOS first when the model wants one
            ids = tokenizer.encode(request.prompt)
            if tokenizer.add_bos and tokenizer.bos_id is not None:
                ids = [tokenizer.bos_id] + ids
        if not ids:
            raise ApiError(400, "the prompt encodes to no tokens", "prompt")
        outcome = Outcome("stop", len(ids), 0, prompt_ids=list(ids), sources=sources)
        if request.echo:
            outcome.prompt_text = tokenizer.decode(ids, skip_special_tokens=False)
            if request.logprobs is not None:
                outcome.prompt_logprobs = engine.score(ids, top_k=request.logprobs)
            self.emit("prompt", outcome)
        sent = 0
        eos = engine.eos_ids
        for text in engine.stream(ids, settings, self.cancel, logprobs=request.logprobs):
            entries = []
            if request.logprobs is not None:
                entries = [e for e in engine.reply.logprobs[sent:] if e.id not in eos]
                sent = len(engine.reply.logprobs)
            self.emit("delta", Delta(text, entries))
        reply = engine.reply
        outcome.finish_reason = FINISH.get(reply.finish_reason, "stop")
        outcome.completion_tokens = reply.stats.new_tokens
        outcome.logprobs = [e for e in reply.logprobs[sent:] if e.id not in eos]
        return outcome

    def _with_documents(self, engine, settings) -> tuple[list, tuple]:
        """(the messages with the library's passages before the last user message's question,
        the sources). The messages stay as the client sent them, system turns included where
        they were: the model's template renders them as it renders a request without
        documents (a template that refuses them refuses both alike, with a 400). Passages go
        in best first while the prompt leaves room for the reply (engine.retrieval.fit_passages,
        as in the window's chat; no turn is dropped: a request longer than the context is the
        client's to shorten)."""
        from ..documents.library import LibraryStore, default_db_path
        from ..engine.retrieval import LibraryRetriever, RetrievalOptions, fit_passages, rank_turn
        from ..text.prompt import render_and_encode

        request = self.request
        db = self.library_db or str(default_db_path())
        with LibraryStore(db) as store:
            if request.documents not in store.names():
                raise ApiError(404, f"there is no document library named {request.documents!r}; "
                                    f"libraries: {', '.join(store.names()) or 'none'}", "documents",
                               code="library_not_found")
            # the system turns are instructions, not the question: they stay out of the search
            retriever = LibraryRetriever(store, request.documents)
            options = RetrievalOptions()
            hits = rank_turn(engine, retriever, [m for m in request.messages if m["role"] != "system"],
                             options).hits
        budget = engine.context_len - min(settings.max_new_tokens, engine.context_len // 4)
        messages, chosen = fit_passages(
            request.messages, hits, budget,
            lambda trial: len(render_and_encode(engine.tokenizer, trial, add_generation_prompt=True).ids),
            best_last=options.best_last)
        return messages, tuple(chosen)


@contextmanager
def wearing(backend, adapter: str):
    """The model wears `adapter` ("" none) inside, then what it wore before (the window's own).
    The adapter already on only stays; "" with one on switches it off (no reload); another folder
    is put on (a LoRA adapter is small: read and attached in milliseconds) and taken off after."""
    from ..errors import ModelLoadError

    worn = getattr(backend, "worn_adapter", "") or ""
    if adapter == worn:
        yield
    elif not adapter:
        backend.set_adapter_enabled(False)
        try:
            yield
        finally:
            backend.set_adapter_enabled(True)
    else:
        try:
            backend.wear_adapter(adapter)
        except (OSError, ValueError, ModelLoadError) as exc:  # the folder went away or was damaged since it was listed
            raise ApiError(500, f"the adapter {adapter} could not be put on: {exc}", kind="server_error") from exc
        try:
            yield
        finally:
            backend.wear_adapter(worn)


class ModelThread:
    """`chatapp serve`'s model thread: runs submitted jobs one at a time, in order."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self._queue: "queue.Queue[Optional[Callable]]" = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="api-model", daemon=True)
        self._thread.start()

    def submit(self, run: Callable[[Any], None]) -> None:
        self._queue.put(run)

    def _loop(self) -> None:
        while True:
            run = self._queue.get()
            if run is None:
                return
            run(self.backend)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
