"""Side by side: one prompt answered by two sources at once, a step of each in turn.

A source is the loaded model as it is ("base", its adapter switched off), the loaded model
wearing an adapter, or another model loaded for the comparison when both fit in memory (the
config-only estimate decides before anything is read). Each pane is a *lane*: its own
`Engine` view of a model with a KV cache of its own, so the lanes can be advanced in any
order. Before each step a lane puts its cache and its adapter into the model (a held adapter
is copied in place: ChatBackend.wear_adapter), so what a lane writes equals what that source
writes alone with the same seed and settings (each reply seeds its own generator).

Torch and the loaders are imported on first use, in the worker thread; the dataclass and
`interleave` need neither (the window and test fakes use them).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

log = logging.getLogger(__name__)

SOURCE_KINDS = ("base", "adapter", "model")


@dataclass(frozen=True)
class PaneSource:
    """What one pane shows: "base" (the loaded model, adapter off), "adapter" (the loaded model
    wearing the adapter folder `path`) or "model" (another model, `path` its spec)."""

    kind: str = "base"
    path: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"a pane's source is one of {', '.join(SOURCE_KINDS)}, not {self.kind!r}")
        if self.kind == "base" and self.path:
            raise ValueError("the base model needs no path")
        if self.kind != "base" and not self.path:
            raise ValueError(f"a pane showing an {self.kind} needs its path" if self.kind == "adapter"
                             else "a pane showing another model needs its path")


def interleave(lanes: Sequence[Iterator[str]]) -> Iterator[tuple[int, str]]:
    """(lane index, text) from each lane in turn, one step of each, until every lane is done:
    the panes stream together instead of one after the other."""
    live = list(enumerate(iter(lane) for lane in lanes))
    while live:
        for item in list(live):
            index, lane = item
            try:
                text = next(lane)
            except StopIteration:
                live.remove(item)
                continue
            yield index, text


def _caches(model) -> list:
    return [block.attn.kv_cache for block in model.layers]


def _put_caches(model, caches: list) -> None:
    for block, cache in zip(model.layers, caches):
        block.attn.kv_cache = cache


class _Lane:
    """One pane's engine (a copy of a model's Engine with its own cached prefix), the KV cache
    it owns, and the adapter it wears (None: another model, nothing to switch)."""

    def __init__(self, engine, caches: list, adapter: Optional[str]) -> None:
        self.engine = engine
        self.caches = caches
        self.adapter = adapter
        self.session = None  # the ChatSession replying in this lane


class SideBySide:
    """The lanes of one comparison on a `ChatBackend`; `stream` yields (pane, text) in turn and
    puts the backend back as it found it (caches, adapter; a second model released)."""

    def __init__(self, backend, sources: Sequence[PaneSource],
                 loader: Optional[Callable[..., Any]] = None) -> None:
        if backend.engine is None:
            raise RuntimeError("no model is loaded")
        if len(sources) < 1:
            raise ValueError("a comparison needs at least one pane")
        self.backend = backend
        self.sources = list(sources)
        self.loader = loader
        self.main_caches = _caches(backend.loaded.model)
        self.worn = backend.worn_adapter  # the chat's adapter, put back afterwards
        self.others: dict[str, Any] = {}  # spec -> (LoadedModel, Engine) loaded for the comparison
        self.lanes: list[_Lane] = []
        self.replies: list = []  # each lane's Reply, once the comparison is done

    # -- setting up ----------------------------------------------------------------------------
    def _load_other(self, spec: str):
        """Another model beside the loaded one, after the estimate says both fit (else raises)."""
        from .backend import LoadOptions
        from .generate import Engine
        from .loader import load_model
        from .out_of_memory import NotEnoughMemoryError

        info = self.backend.info
        options = LoadOptions(device=info.device, context_len=info.context_len)
        need = self.backend.estimate(spec, options)
        if not need.fits:
            raise NotEnoughMemoryError(does_not_fit_message(need), need.memory_bytes)
        loaded = (self.loader or load_model)(spec, device=info.device, context_len=info.context_len,
                                             progress=None, adapter=None, weights=need.weights or "auto")
        engine = Engine(loaded.model, loaded.tokenizer, context_len=min(info.context_len, loaded.config.max_seq_len))
        return loaded, engine

    def _setup(self) -> None:
        backend = self.backend
        claimed: set[int] = set()  # models whose own cache a lane already uses
        for source in self.sources:
            if source.kind == "model":
                if source.path not in self.others:
                    self.others[source.path] = self._load_other(source.path)
                engine = self.others[source.path][1]
            else:
                engine = backend.engine
            owner = engine.model
            lane_engine = copy.copy(engine)  # shares the model; its own cached prefix and reply
            lane_engine.reset()
            if id(owner) not in claimed:
                claimed.add(id(owner))
                caches = _caches(owner)
            else:  # another cache of the same shape for this lane; the model's own put back
                before = _caches(owner)
                owner.setup_cache(batch_size=1, max_seq_len=engine.context_len)
                caches = _caches(owner)
                _put_caches(owner, before)
            adapter = None if source.kind == "model" else (source.path if source.kind == "adapter" else "")
            self.lanes.append(_Lane(lane_engine, caches, adapter))
        backend.engine.reset()  # the chat's cached prefix is overwritten by a lane

    def _activate(self, lane: _Lane) -> None:
        """Put the lane's cache and adapter into its model before it takes a step."""
        from ..model.lora import has_lora, set_lora_enabled

        if lane.caches is not None:
            _put_caches(lane.engine.model, lane.caches)
        if lane.adapter is None:
            return
        model = self.backend.loaded.model
        if lane.adapter == "":
            if has_lora(model):
                set_lora_enabled(model, False)
            return
        if self.backend.worn_adapter != lane.adapter:
            self.backend.wear_adapter(lane.adapter)  # held after the first time: copied in place
        set_lora_enabled(model, True)

    def _restore(self) -> None:
        from ..model.lora import has_lora, set_lora_enabled
        from .out_of_memory import release_memory

        backend = self.backend
        model = backend.loaded.model
        _put_caches(model, self.main_caches)
        try:
            if backend.worn_adapter != self.worn:
                backend.wear_adapter(self.worn)
            if has_lora(model):
                set_lora_enabled(model, True)
        finally:
            backend.engine.reset()
            had_others = bool(self.others)
            self.others.clear()
            for lane in self.lanes:
                lane.caches = None
            if had_others:
                release_memory()

    # -- running ---------------------------------------------------------------------------------
    def _lane_stream(self, lane: _Lane, messages: list[dict], system_prompt: str, settings, cancel) -> Iterator[str]:
        from .session import ChatSession

        lane.session = ChatSession(lane.engine, system_prompt=system_prompt, messages=messages)
        steps = lane.session.respond(settings, cancel)
        while True:
            self._activate(lane)  # everything the model computes for this lane runs inside next()
            try:
                text = next(steps)
            except StopIteration:
                return
            yield text

    def stream(self, messages: list[dict], system_prompt: str, settings, cancel=None) -> Iterator[tuple[int, str]]:
        """(pane, text delta) of every pane in turn; afterwards `replies` holds each pane's Reply."""
        try:
            self._setup()
            lanes = [self._lane_stream(lane, messages, system_prompt, settings, cancel) for lane in self.lanes]
            yield from interleave(lanes)
            self.replies = [lane.session.reply for lane in self.lanes]
        finally:
            self._restore()


def does_not_fit_message(need) -> str:
    """A ModelEstimate that does not fit beside the loaded model, in one sentence with its numbers."""
    free = "an unknown amount" if need.free_bytes is None else f"{need.free_bytes / 1024**3:.2f} GiB"
    return (f"{need.name} does not fit beside the loaded model: it needs {need.memory_bytes / 1024**3:.2f} GiB "
            f"and {free} is free. Compare adapters of the loaded model instead, or choose a smaller model.")
