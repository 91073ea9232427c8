"""What the window's generation worker drives: the `Backend` protocol, the real `ChatBackend`,
and the typed payloads that cross the worker boundary.

No Qt here: the UI wraps a backend in a worker thread, and tests hand the window a fake that
satisfies the same `Backend` protocol (nothing in the app asks whether it holds a fake). Torch
and the loaders are imported on first use, in the worker thread, so the window shows before
they are. Long because the protocol, its payloads and the one real backend read best together
(streaming with documents and images included); side by side lives in side_by_side.py, retrieval
in retrieval.py, images in vision.py.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator, Optional, Protocol, runtime_checkable

from .out_of_memory import REPLY_MESSAGE, NotEnoughMemoryError, is_out_of_memory, load_message, release_memory

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
    # a GGUF model's vision part (llama.cpp's mmproj file); None: an mmproj*.gguf beside the model, if any
    mmproj: Optional[str] = None


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
    thinking_switch: bool = False  # the chat template reads enable_thinking (Qwen3): the setting applies
    weights: str = ""  # the weights option in use ("int4", ...), "" when the loader does not say
    weights_reason: str = ""  # e.g. "auto picked int8: 0.30 GiB fits comfortably (float32 would not)"
    # images (engine.vision): whether the model sees them, at most how many a message holds, and the
    # context positions one image fills (the model's own image size; 0 without vision)
    vision: bool = False
    max_images: int = 0
    image_tokens: int = 0

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
    auto_weights: str = ""  # what "auto" would pick for this model here

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
    # {"role": "user" | "assistant", "content": str}, oldest first; a user message may carry
    # "images": [engine.vision.ImageAttachment] (decoded in the worker; refused by a text-only model)
    messages: list[dict]
    system_prompt: str
    sampling: dict  # keyword arguments of engine.sampling.SamplingSettings
    continue_last: bool = False
    documents: Optional[DocumentsChoice] = None  # retrieve passages for the last user message
    enable_thinking: Optional[bool] = None  # Qwen3's reasoning switch; None: the template's default
    logprobs: Optional[int] = None  # record each token's log-probability and this many alternatives
    forced: tuple = ()  # the reply's first token ids, taken as given ("continue from this alternative")


@dataclass(frozen=True)
class CompareRequest:
    """One prompt, one seed and one set of sampling settings, answered by two panes together,
    each by its own source (engine.side_by_side.PaneSource)."""

    request_id: int
    prompt: str
    system_prompt: str
    sampling: dict
    sources: tuple  # two PaneSources, left pane first

    def __post_init__(self) -> None:
        if len(self.sources) != 2:
            raise ValueError(f"a comparison has two panes, not {len(self.sources)}")


@dataclass(frozen=True)
class ScoreRequest:
    """What the fine-tune changed: score `text` token by token, adapter off and on (token_scores)."""

    request_id: int
    text: str


@dataclass(frozen=True)
class ReplyFinished:
    """A finished reply (the new text only, for a continued one) and its numbers."""

    text: str
    finish_reason: str
    stats: dict  # GenerationStats as a dict: prompt_tokens, new_tokens, decode_tok_s...
    dropped_messages: int = 0  # old messages the reply could not see (context full)
    context_used: int = 0  # positions of the context in use after the reply
    contained_markers: bool = False  # the messages held chat-template markers (encoded as text)
    folded_system: bool = False  # the template refuses a system turn: the system prompt opened the first user turn
    prompt: str = ""  # exactly what the model saw, its template markers included
    sources: tuple = ()  # engine.retrieval.Source: the passages put into the prompt, numbered
    left_out: int = 0  # passages found but left out: the context had no room
    library: str = ""  # the library they came from
    # with ReplyRequest.logprobs: one dict per new token (logprob_entry), as the token view stores it
    logprobs: tuple = ()


def logprob_entry(entry: Any) -> dict:
    """A TokenLogprob as JSON-able data for the window and the database: id, token text, raw
    log-probability, the sampler's probability (None: forced or greedy-less), the alternatives."""
    return {"id": entry.id, "token": entry.token, "logprob": entry.logprob, "sampled_prob": entry.sampled_prob,
            "top": [{"id": alt.id, "token": alt.token, "logprob": alt.logprob} for alt in entry.top]}


class ModelLoader(Protocol):
    """What ChatBackend loads models with (engine.loader.load_model, or a test's loader): every
    argument is passed, `weights` an engine.weights_option name or "auto"."""

    def __call__(self, spec: str, *, device: str, context_len: int, progress: LoadProgress,
                 adapter: Optional[str], weights: str) -> Any: ...


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
               documents: Optional[DocumentsChoice] = None, enable_thinking: Optional[bool] = None,
               logprobs: Optional[int] = None, forced: tuple = ()) -> Iterator[str]:
        """Yield the reply's text deltas; then `finished()` describes it. With `documents`, the
        library's best passages go into the last user message (as text) and `finished()`
        carries them as sources (None: no library); `enable_thinking` (None: the template's
        default) matters for a model whose ModelInfo has `thinking_switch`.
        `logprobs` (K alternatives) records each token's probabilities (`streamed_logprobs`
        while it streams, `finished().logprobs` after; with documents too); `forced`: the
        reply's first token ids, as given. The worker passes every argument, its default when unused."""

    def streamed_logprobs(self) -> list:
        """The TokenLogprobs recorded so far for the reply streaming now."""

    def finished(self) -> ReplyFinished:
        """The reply the last `stream` produced."""

    def compare(self, sources: tuple, messages: list[dict], system_prompt: str, settings: Any,
                cancel: Optional[threading.Event] = None) -> Iterator[tuple[int, str]]:
        """Side by side: (pane index, text delta) of each source's reply in turn, one step of each
        (engine.side_by_side), with the same settings and seed; afterwards `compared()` describes
        each pane's reply and the backend is as before (the chat's adapter on, its model loaded)."""

    def compared(self) -> list[dict]:
        """Each pane's reply of the last `compare`: {"text", "finish_reason", "stats"}."""

    def context_used(self) -> int:
        """Positions of the context in use now (also while a reply streams)."""

    def image_cost(self, image) -> int:
        """Context positions `image` (engine.vision.ImageAttachment) fills for the loaded model;
        NoVisionError for a text-only model, ImageError for a bad image (decodes it: worker thread)."""


class ChatBackend:
    """The real backend: our Transformer through `engine.loader` and `engine.session` (satisfies `Backend`)."""

    def __init__(self, loader: Optional[ModelLoader] = None) -> None:
        self._loader = loader  # None: chatapp.engine.loader.load_model
        self.loaded = None  # LoadedModel
        self.engine = None  # Engine
        self.info: Optional[ModelInfo] = None
        self.reply = None  # the last Reply
        self.dropped_messages = 0
        self.contained_markers = False  # the last prompt's messages held chat-template markers (read as text)
        self.folded_system = False  # the last prompt's system prompt went into the first user turn
        self.prompt = ""  # the last prompt as the model saw it
        self.retrieval = None  # engine.retrieval.RetrievalResult of the last reply with documents
        self.library = ""
        self._cache_freed = False  # a reply ran out of memory and dropped the KV cache
        self.worn_adapter = ""  # the adapter folder the model wears now ("" none); see wear_adapter
        self._held_adapters: dict = {}  # (folder, file mtime) -> (LoRAConfig, tensors): wear_adapter's
        self._compared: list[dict] = []  # each pane's reply of the last comparison

    def load(self, spec: str, options: LoadOptions,
             progress: Optional[Callable[[str, float], None]] = None) -> ModelInfo:
        """Load `spec`; on failure the previously loaded model stays in place."""
        import torch

        from ..text.thinking import has_thinking_switch
        from .device import default_threads, estimate_memory
        from .generate import Engine
        from .loader import load_model
        from .vision import is_vision_spec, load_vision_model, vision_info

        torch.set_num_threads(options.threads or default_threads())
        vision = is_vision_spec(spec, options.mmproj)
        loader = self._loader or (load_vision_model if vision else load_model)
        extra = {"mmproj": options.mmproj} if options.mmproj else {}
        out_of_memory = False
        try:
            loaded = loader(spec, device=options.device, context_len=options.context_len, progress=progress,
                            adapter=options.adapter or None, weights=options.weights, **extra)
            if progress:
                progress("engine", 0.0)  # fast paths and the KV cache: a noticeable part of the load
            context = min(options.context_len, loaded.config.max_seq_len)
            engine = Engine(loaded.model, loaded.tokenizer, context_len=context)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            log.debug("out of memory loading %s", spec, exc_info=True)
            out_of_memory = True
        if out_of_memory:
            # Out of the except block: the error's traceback, whose frames hold the half-built
            # tensors, is gone, so they can be freed now. The previous model stays in self.loaded.
            release_memory()
            raise self._load_oom(spec, options)
        weights = getattr(loaded, "weights", "")
        if weights:
            from ..model.lora import lora_state_dict
            from .weights_option import estimate_for_option
            adapter_params = sum(t.numel() for t in lora_state_dict(loaded.model).values())
            estimate = estimate_for_option(loaded.config, context, weights, adapter_params=adapter_params,
                                           device_type=torch.device(getattr(loaded, "device", "cpu")).type,
                                           source=getattr(loaded, "kind", "gguf"))
        else:
            estimate = estimate_memory(loaded.config, context, loaded.dtype)
        # dtype names what the status bar shows: the compact form when the weights are int8 / int4
        dtype = weights if weights in ("int8", "int4") else str(loaded.dtype).replace("torch.", "")
        self.loaded, self.engine, self._cache_freed = loaded, engine, False
        self.worn_adapter = str(options.adapter or "")
        self._held_adapters = {}  # held for the previous model
        if options.adapter:  # held from the start: the server puts it back after another one
            from ..weights.peft_adapter import read_adapter_info
            self._hold(str(options.adapter), read_adapter_info(Path(options.adapter).expanduser()).config)
        self.info = ModelInfo(
            name=loaded.name, path=str(loaded.path), kind=loaded.kind, device=str(loaded.device),
            dtype=dtype, context_len=context,
            n_params=loaded.config.n_params, load_s=loaded.load_s,
            memory=estimate.describe(), memory_parts=estimate.parts(),
            adapter=str(options.adapter or ""), sampling_defaults=dict(loaded.sampling_defaults),
            thinking_switch=has_thinking_switch(loaded.tokenizer.chat_template),
            weights=weights, weights_reason=getattr(loaded, "weights_reason", ""), **vision_info(loaded.model))
        return self.info

    def _load_oom(self, spec: str, options: LoadOptions) -> NotEnoughMemoryError:
        """The error for a load of `spec` that ran out of memory, with what it needs if that can be read."""
        try:
            need = self.estimate(spec, options)
            name, needed = need.name, need.memory_bytes
        except Exception as exc:  # a model that got as far as allocating has a config; be safe anyway
            log.debug("no estimate for %s after running out of memory: %s", spec, exc)
            name, needed = spec, None
        message = load_message(name, needed)
        log.warning("%s%s", message, f"; {self.info.name} stays loaded" if self.info else "")
        return NotEnoughMemoryError(message, needed)

    def estimate(self, spec: str, options: LoadOptions) -> ModelEstimate:
        """Memory a load of `spec` would need, read from its config only (see loader.estimate_model)."""
        from .loader import estimate_model
        from .vision import estimate_vision_model, is_vision_spec

        if is_vision_spec(spec, options.mmproj):
            return ModelEstimate.from_dict(estimate_vision_model(spec, device=options.device,
                                                                 context_len=options.context_len,
                                                                 mmproj=options.mmproj))
        return ModelEstimate.from_dict(estimate_model(spec, device=options.device, context_len=options.context_len,
                                                      weights=options.weights, adapter=options.adapter or None))

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

    def _hold(self, folder: str, config) -> None:
        """Keep the adapter the model wears now, read from `folder`, for wear_adapter (the last 8)."""
        from ..model.lora import lora_state_dict
        from ..weights.peft_adapter import WEIGHTS_FILE

        path = Path(folder).expanduser()
        key = (str(path.resolve()), (path / WEIGHTS_FILE).stat().st_mtime_ns)
        tensors = {k: v.clone() for k, v in lora_state_dict(self.loaded.model).items()}
        self._held_adapters = {**dict(list(self._held_adapters.items())[-7:]), key: (config, tensors)}

    def wear_adapter(self, folder: str) -> None:
        """Put the LoRA adapter in `folder` on the model instead of the one it wears ("" for none),
        without reloading the model: the API server runs a request with another adapter of the same
        model, then puts the window's own back. `info.adapter` keeps naming the window's.

        An adapter worn once is held in memory (its tensors, a few MB; checked when first read, read
        again if its file changes); one shaped like the worn adapter is then copied into the LoRA
        layers in place instead of rebuilding them (benchmarks/adapter_swap.py)."""
        import torch

        from ..model.lora import LoRALinear, apply_lora, has_lora, lora_layers, lora_state_dict, remove_lora
        from ..weights.peft_adapter import WEIGHTS_FILE, load_adapter

        if self.loaded is None:
            raise RuntimeError("no model is loaded")
        model = self.loaded.model
        if not folder:
            remove_lora(model)
        else:
            path = Path(folder).expanduser()
            where = str(path.resolve())
            try:
                held = self._held_adapters.get((where, (path / WEIGHTS_FILE).stat().st_mtime_ns))
            except OSError:  # gone since it was worn (the chat's own, say): the held copy still serves
                held = next((v for k, v in reversed(self._held_adapters.items()) if k[0] == where), None)
            if held is None:
                self._hold(folder, load_adapter(model, path).config)  # checks before it touches the model
            else:
                config, tensors = held
                layers = dict(lora_layers(model))
                same = has_lora(model) and {f"{n}.lora_{w}" for n in layers for w in "AB"} == set(tensors) and all(
                    isinstance(x, LoRALinear) and x.r == config.r and x.scaling == config.scaling
                    for x in layers.values())
                if not same:
                    remove_lora(model)
                    apply_lora(model, config, dtype=next(iter(tensors.values())).dtype)
                with torch.no_grad():
                    for name, param in lora_state_dict(model).items():
                        param.copy_(tensors[name])
                for layer in lora_layers(model):
                    layer[1].enabled = True
        self.worn_adapter = str(folder)
        self.engine.reset()  # the cached keys/values were computed with the other weights

    def stream(self, messages: list[dict], system_prompt: str, settings,
               cancel: Optional[threading.Event] = None, continue_last: bool = False,
               documents: Optional[DocumentsChoice] = None, enable_thinking: Optional[bool] = None,
               logprobs: Optional[int] = None, forced: tuple = ()) -> Iterator[str]:
        """Reply to `messages` (ending with the user's) with SamplingSettings `settings`, or with
        `continue_last`, write on from the end of the last (assistant) message; afterwards
        `reply` holds the new text and its stats. With `documents` (not for a continuation,
        which keeps the passages its prompt had), the library's passages that fit the context
        go into the last user message: retrieved and fitted here, in the caller's thread.
        Out of memory part way: `NotEnoughMemoryError` (the deltas already yielded are the
        reply so far), the KV cache freed, the model still loaded for the next reply."""
        if self.engine is None:
            raise RuntimeError("no model is loaded")
        if any(m.get("images") for m in messages) and not (self.info and self.info.vision):
            from .vision import NoVisionError
            raise NoVisionError(self.info.name if self.info else "the loaded model")
        self.reply, self.retrieval, self.library, self.prompt = None, None, "", ""
        out_of_memory = False
        try:
            yield from self._stream(messages, system_prompt, settings, cancel, continue_last, documents,
                                    enable_thinking, logprobs, forced)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            log.debug("out of memory during a reply", exc_info=True)
            out_of_memory = True
        if out_of_memory:  # outside the except block, so the failed step's tensors can be freed
            self._free_cache()
            raise NotEnoughMemoryError(REPLY_MESSAGE)

    def _free_cache(self) -> None:
        """After running out of memory mid-reply: drop the KV cache (set up again by the next reply)."""
        self.engine.reset()
        self.engine.model.clear_cache()
        self._cache_freed = True
        release_memory()
        log.warning("out of memory during a reply: the KV cache was freed")

    def _stream(self, messages, system_prompt, settings, cancel, continue_last, documents,
                enable_thinking, logprobs, forced) -> Iterator[str]:
        from ..text.thinking import thinking_variables
        from .session import ChatSession

        # enable_thinking reaches templates that read it (Qwen3); others render as before
        variables = thinking_variables(self.engine.tokenizer.chat_template, enable_thinking)
        if self._cache_freed:  # an earlier reply ran out of memory
            self.engine.model.setup_cache(batch_size=1, max_seq_len=self.engine.context_len)
            self._cache_freed = False
        if documents is not None and not continue_last:
            if not messages or messages[-1]["role"] != "user":
                raise ValueError("a reply with documents needs the conversation to end with a user message")
            session = ChatSession(self.engine, system_prompt=system_prompt, messages=messages[:-1],
                                  template_variables=variables)
            deltas = self._with_documents(session, messages[-1], settings, cancel, documents, logprobs, forced)
        else:
            session = ChatSession(self.engine, system_prompt=system_prompt, messages=messages,
                                  template_variables=variables)
            reserve = min(settings.max_new_tokens, self.engine.context_len // 4)
            ids, _dropped = session.fit(reserve, continue_final=continue_last)  # what respond will feed
            self.prompt = _shown_prompt(self.engine, ids)
            if continue_last:
                deltas = session.continue_reply(settings, cancel, logprobs)
            else:
                deltas = session.respond(settings, cancel, logprobs, forced)
        yield from deltas
        self.reply = session.reply
        self.dropped_messages = session.dropped_messages
        self.contained_markers = session.contained_markers
        self.folded_system = session.folded_system

    def _with_documents(self, session, message: dict, settings, cancel, documents: DocumentsChoice,
                        logprobs: Optional[int], forced: tuple) -> Iterator[str]:
        from ..documents.library import LibraryStore
        from .retrieval import LibraryRetriever, send_with_documents

        retriever = LibraryRetriever(LibraryStore(documents.db_path), documents.name)
        try:  # the search and the fitting run now; the store is not needed while the reply streams
            reply = send_with_documents(session, message["content"], settings, retriever, cancel, logprobs=logprobs,
                                        forced=forced, images=message.get("images") or ())  # they stay in the turn
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
                             contained_markers=self.contained_markers, folded_system=self.folded_system,
                             prompt=self.prompt,
                             sources=tuple(self.retrieval.sources) if self.retrieval else (),
                             left_out=self.retrieval.left_out if self.retrieval else 0, library=self.library,
                             logprobs=tuple(logprob_entry(e) for e in reply.logprobs))

    def compare(self, sources: tuple, messages: list[dict], system_prompt: str, settings,
                cancel: Optional[threading.Event] = None) -> Iterator[tuple[int, str]]:
        """See Backend.compare: lanes of engine.side_by_side, another model loaded for it when
        the estimate says it fits beside this one (released afterwards)."""
        from .side_by_side import SideBySide

        if self.engine is None:
            raise RuntimeError("no model is loaded")
        self._compared = []
        if self._cache_freed:  # an earlier reply ran out of memory
            self.engine.model.setup_cache(batch_size=1, max_seq_len=self.engine.context_len)
            self._cache_freed = False
        run = SideBySide(self, sources, loader=self._loader)
        out_of_memory = False
        try:
            yield from run.stream(messages, system_prompt, settings, cancel)
        except NotEnoughMemoryError:  # another model refused before loading: its own message, with numbers
            raise
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            log.debug("out of memory during a comparison", exc_info=True)
            out_of_memory = True
        if out_of_memory:  # as for a reply: the cache freed, the model still loaded
            self._free_cache()
            raise NotEnoughMemoryError(REPLY_MESSAGE)
        self._compared = [{"text": r.text, "finish_reason": r.finish_reason, "stats": r.stats.to_dict()}
                          for r in run.replies]

    def compared(self) -> list[dict]:
        return list(self._compared)

    def score_text(self, text: str, progress: Optional[Callable[[int, int], None]] = None,
                   cancel: Optional[threading.Event] = None) -> list:
        """engine.token_scores.TokenScore for each token of `text` but the first: its log-probability
        with the adapter off and (when one is loaded) on, in windows of the context. The engine's
        cached prefix is forgotten (its cache memory is reused)."""
        from ..text.prompt import encode_text
        from .token_scores import score_text_ids

        if self.engine is None:
            raise RuntimeError("no model is loaded")
        ids = encode_text(self.loaded.tokenizer, text)
        if len(ids) < 2:
            raise ValueError("the text needs at least two tokens to be scored")
        self.engine.reset()
        try:
            return score_text_ids(self.loaded.model, ids, self.loaded.tokenizer, progress=progress, cancel=cancel)
        finally:
            self.engine.reset()

    def streamed_logprobs(self) -> list:
        """The TokenLogprobs of the reply streaming now (read by the worker after each delta)."""
        reply = getattr(self.engine, "reply", None) if self.engine else None
        return reply.logprobs if reply is not None else []

    def context_used(self) -> int:
        return self.engine.cached_tokens if self.engine else 0

    def image_cost(self, image) -> int:
        """Context positions `image` (engine.vision.ImageAttachment) fills for the loaded model: the
        composer's cost for the image at hand (Idefics3's depends on its size). Decodes the image:
        call it from the generation worker. NoVisionError for a text-only model, ImageError for a bad image."""
        from .vision import image_cost

        if self.engine is None:
            raise RuntimeError("no model is loaded")
        return image_cost(self.engine.model, image)


def _shown_prompt(engine, ids: list[int]) -> str:
    """The prompt as "What the model saw" shows it; an image's run of image tokens (576 for LLaVA
    1.5) as one marker with its count."""
    from .vision import VisionDecoder

    tokenizer = engine.tokenizer
    if not isinstance(engine.model, VisionDecoder):
        return tokenizer.decode(ids, skip_special_tokens=False)
    image = engine.model.vision.image_token_id
    marker = tokenizer.id_to_token(image) or "<image>"
    pieces, start = [], 0
    i = 0
    while i < len(ids):
        if ids[i] != image:
            i += 1
            continue
        end = i
        while end < len(ids) and ids[end] == image:
            end += 1
        pieces.append(tokenizer.decode(ids[start:i], skip_special_tokens=False))
        pieces.append(f"{marker}×{end - i}")
        start = i = end
    pieces.append(tokenizer.decode(ids[start:], skip_special_tokens=False))
    return "".join(pieces)
