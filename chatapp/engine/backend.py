"""What the window's generation worker drives: the `Backend` protocol, the real `ChatBackend`,
and the typed payloads that cross the worker boundary.

No Qt here: the UI wraps a backend in a worker thread, and tests hand the window a fake that
satisfies the same `Backend` protocol (nothing in the app asks whether it holds a fake). Torch
and the loaders are imported on first use, in the worker thread, so the window shows before
they are.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator, Optional, Protocol, runtime_checkable

log = logging.getLogger(__name__)

# Finish reasons of a reply that stopped before its end, so that it can be continued
# (stream(..., continue_last=True)). Here, not in session.py, so the window can read it
# without importing torch.
CONTINUABLE_REASONS = ("length", "cancelled")

LoadProgress = Optional[Callable[[str, float], None]]  # (stage, fraction of that stage)


@dataclass
class LoadOptions:
    device: str = "auto"
    context_len: int = 4096
    threads: int = 0  # 0: default for this machine
    adapter: Optional[str] = None  # a LoRA adapter folder (PEFT layout) to put on the model
    weights: str = "auto"  # engine.weights_option.WEIGHT_OPTIONS: float32, bf16, float16, int8, int4


@dataclass
class ModelInfo:
    """A loaded model: what `Backend.load` returns and the worker's `model_loaded` carries."""

    name: str
    path: str
    kind: str
    device: str
    dtype: str
    context_len: int
    n_params: int
    load_s: float
    memory: str
    adapter: str = ""  # the adapter folder loaded with the model, "" for none
    memory_parts: dict = field(default_factory=dict)  # MemoryEstimate.parts(): bytes by part
    # the sampling values the model file recommends (sampling_settings.RECOMMENDABLE), {} for none
    sampling_defaults: dict = field(default_factory=dict)
    weights: str = ""  # the weights option in use ("int4", ...), "" when the loader does not say
    weights_reason: str = ""  # e.g. "auto picked int8: 0.30 GiB fits comfortably (float32 would not)"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelEstimate:
    """What loading a model would need, read from its config only (`Backend.estimate`)."""

    name: str
    n_params: int
    context_len: int
    device: str
    dtype: str
    memory: str  # the engine's own wording, e.g. "0.61 GiB (weights 0.50, ...)"
    memory_bytes: int
    free_bytes: Optional[int] = None  # None: unknown
    fits: bool = True
    memory_parts: dict = field(default_factory=dict)
    weights: str = ""  # the weights option the estimate is for (what "auto" resolves to)
    fit: str = ""  # "fits", "tight", "does not fit" (engine.weights_option.fit_word)
    options: dict = field(default_factory=dict)  # {option: {"bytes", "fit"}} for every weights option

    @classmethod
    def from_dict(cls, data: dict) -> "ModelEstimate":
        """From `engine.loader.estimate_model`'s dict; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class DocumentsChoice:
    """The library a reply retrieves passages from: its name in the LibraryStore file at `db_path`.
    The backend opens the store in the worker thread (a store is not shared between threads)."""

    db_path: str
    name: str

    def __post_init__(self) -> None:
        if not self.name or not self.db_path:
            raise ValueError("a documents choice needs a library file and a library name")


@dataclass(frozen=True)
class ReplyRequest:
    """The GUI asks the worker for a reply (or, with `continue_last`, more of the last one)."""

    request_id: int
    messages: list[dict]  # {"role": "user" | "assistant", "content": str}, oldest first
    system_prompt: str
    sampling: dict  # keyword arguments of engine.sampling.SamplingSettings
    continue_last: bool = False
    documents: Optional[DocumentsChoice] = None  # retrieve passages for the last user message


@dataclass(frozen=True)
class CompareRequest:
    """One prompt answered twice with one seed: the adapter switched off, then on."""

    request_id: int
    prompt: str
    system_prompt: str
    sampling: dict


@dataclass(frozen=True)
class ReplyFinished:
    """A finished reply (the new text only, for a continued one) and its numbers."""

    text: str
    finish_reason: str
    stats: dict  # GenerationStats as a dict: prompt_tokens, new_tokens, decode_tok_s...
    dropped_messages: int = 0  # old messages the reply could not see (context full)
    context_used: int = 0  # positions of the context in use after the reply
    contained_markers: bool = False  # the messages held chat-template markers (encoded as text)
    prompt: str = ""  # exactly what the model saw, its template markers included
    sources: tuple = ()  # engine.retrieval.Source: the passages put into the prompt, numbered
    left_out: int = 0  # passages found but left out: the context had no room
    library: str = ""  # the library they came from


@runtime_checkable
class Backend(Protocol):
    """What the generation worker needs of a backend: `ChatBackend`, or a test's fake."""

    def load(self, spec: str, options: LoadOptions, progress: LoadProgress = None) -> ModelInfo:
        """Load `spec`; on failure (or a progress callback that raises) the previous model stays."""

    def estimate(self, spec: str, options: LoadOptions) -> ModelEstimate:
        """What loading `spec` would need, without reading its weights."""

    @property
    def has_adapter(self) -> bool:
        """Whether the loaded model wears a LoRA adapter."""

    def set_adapter_enabled(self, enabled: bool) -> None:
        """Switch the loaded adapter off or on without reloading; raises if there is none."""

    def stream(self, messages: list[dict], system_prompt: str, settings: Any,
               cancel: Optional[threading.Event] = None, continue_last: bool = False,
               documents: Optional[DocumentsChoice] = None) -> Iterator[str]:
        """Yield the reply's text deltas; then `finished()` describes it. With `documents`, the
        library's best passages go into the last user message (as text) and `finished()`
        carries them as sources; the worker passes `documents` only when a library is chosen."""

    def finished(self) -> ReplyFinished:
        """The reply the last `stream` produced."""

    def context_used(self) -> int:
        """Positions of the context in use now (also while a reply streams)."""


class ChatBackend:
    """The real backend: our Transformer through `engine.loader` and `engine.session` (satisfies `Backend`)."""

    def __init__(self, loader: Optional[Callable[..., Any]] = None) -> None:
        self._loader = loader  # None: chatapp.engine.loader.load_model
        self.loaded = None  # LoadedModel
        self.engine = None  # Engine
        self.info: Optional[ModelInfo] = None
        self.reply = None  # the last Reply
        self.dropped_messages = 0
        self.contained_markers = False  # the last prompt's messages held chat-template markers (read as text)
        self.prompt = ""  # the last prompt as the model saw it
        self.retrieval = None  # engine.retrieval.RetrievalResult of the last reply with documents
        self.library = ""

    def load(self, spec: str, options: LoadOptions,
             progress: Optional[Callable[[str, float], None]] = None) -> ModelInfo:
        """Load `spec`; on failure the previously loaded model stays in place."""
        import torch

        from .device import default_threads, estimate_memory
        from .generate import Engine
        from .loader import load_model

        torch.set_num_threads(options.threads or default_threads())
        loader = self._loader or load_model
        extra = {} if options.weights == "auto" else {"weights": options.weights}  # test loaders predate it
        loaded = loader(spec, device=options.device, context_len=options.context_len, progress=progress,
                        adapter=options.adapter or None, **extra)
        if progress:
            progress("engine", 0.0)  # fast paths and the KV cache: a noticeable part of the load
        context = min(options.context_len, loaded.config.max_seq_len)
        engine = Engine(loaded.model, loaded.tokenizer, context_len=context)
        weights = getattr(loaded, "weights", "")
        if weights:
            from .weights_option import estimate_for_option
            estimate = estimate_for_option(loaded.config, context, weights)
        else:
            estimate = estimate_memory(loaded.config, context, loaded.dtype)
        self.loaded, self.engine = loaded, engine
        # dtype names what the status bar shows: the compact form when the weights are int8 / int4
        dtype = weights if weights in ("int8", "int4") else str(loaded.dtype).replace("torch.", "")
        self.info = ModelInfo(
            name=loaded.name, path=str(loaded.path), kind=loaded.kind, device=str(loaded.device),
            dtype=dtype, context_len=context,
            n_params=loaded.config.n_params, load_s=loaded.load_s,
            memory=estimate.describe(), memory_parts=estimate.parts(),
            adapter=str(options.adapter or ""), sampling_defaults=dict(loaded.sampling_defaults),
            weights=weights, weights_reason=getattr(loaded, "weights_reason", ""))
        return self.info

    def estimate(self, spec: str, options: LoadOptions) -> ModelEstimate:
        """Memory a load of `spec` would need, read from its config only (see loader.estimate_model)."""
        from .loader import estimate_model

        return ModelEstimate.from_dict(estimate_model(spec, device=options.device, context_len=options.context_len,
                                                      weights=options.weights))

    @property
    def has_adapter(self) -> bool:
        from ..model.lora import has_lora

        return self.loaded is not None and has_lora(self.loaded.model)

    def set_adapter_enabled(self, enabled: bool) -> None:
        """Switch the loaded LoRA adapter on or off (to compare with the base model) without reloading."""
        from ..model.lora import set_lora_enabled

        if not self.has_adapter:
            raise RuntimeError("no LoRA adapter is loaded")
        set_lora_enabled(self.loaded.model, enabled)
        self.engine.reset()  # the cached keys/values were computed with the other weights

    def stream(self, messages: list[dict], system_prompt: str, settings,
               cancel: Optional[threading.Event] = None, continue_last: bool = False,
               documents: Optional[DocumentsChoice] = None) -> Iterator[str]:
        """Reply to `messages` (ending with the user's) with SamplingSettings `settings`, or with
        `continue_last`, write on from the end of the last (assistant) message; afterwards
        `reply` holds the new text and its stats. With `documents` (not for a continuation,
        which keeps the passages its prompt had), the library's passages that fit the context
        go into the last user message: retrieved and fitted here, in the caller's thread."""
        from .session import ChatSession

        if self.engine is None:
            raise RuntimeError("no model is loaded")
        self.reply, self.retrieval, self.library, self.prompt = None, None, "", ""
        if documents is not None and not continue_last:
            if not messages or messages[-1]["role"] != "user":
                raise ValueError("a reply with documents needs the conversation to end with a user message")
            session = ChatSession(self.engine, system_prompt=system_prompt, messages=messages[:-1])
            deltas = self._with_documents(session, messages[-1]["content"], settings, cancel, documents)
        else:
            session = ChatSession(self.engine, system_prompt=system_prompt, messages=messages)
            reserve = min(settings.max_new_tokens, self.engine.context_len // 4)
            ids, _dropped = session.fit(reserve, continue_final=continue_last)  # what respond will feed
            self.prompt = self.engine.tokenizer.decode(ids, skip_special_tokens=False)
            deltas = (session.continue_reply if continue_last else session.respond)(settings, cancel)
        yield from deltas
        self.reply = session.reply
        self.dropped_messages = session.dropped_messages
        self.contained_markers = session.contained_markers

    def _with_documents(self, session, text: str, settings, cancel, documents: DocumentsChoice) -> Iterator[str]:
        from ..documents.library import LibraryStore
        from .retrieval import LibraryRetriever, send_with_documents

        retriever = LibraryRetriever(LibraryStore(documents.db_path), documents.name)
        try:  # the search and the fitting run now; the store is not needed while the reply streams
            reply = send_with_documents(session, text, settings, retriever, cancel)
        finally:
            retriever.close()
        self.retrieval, self.library, self.prompt = reply.result, documents.name, reply.result.prompt
        return iter(reply)

    def finished(self) -> ReplyFinished:
        reply = self.reply
        if reply is None:
            raise RuntimeError("no reply has been generated yet")
        return ReplyFinished(text=reply.text, finish_reason=reply.finish_reason, stats=reply.stats.to_dict(),
                             dropped_messages=self.dropped_messages, context_used=self.context_used(),
                             contained_markers=self.contained_markers, prompt=self.prompt,
                             sources=tuple(self.retrieval.sources) if self.retrieval else (),
                             left_out=self.retrieval.left_out if self.retrieval else 0, library=self.library)

    def context_used(self) -> int:
        return self.engine.cached_tokens if self.engine else 0
