"""ChatBackend: what the window's generation worker drives. Loads one model, streams replies.

No Qt here: the UI wraps this in a worker thread, and tests hand the window a fake with
the same methods. Torch and the loaders are imported on first use, in the worker thread,
so the window shows before they are.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Optional

log = logging.getLogger(__name__)

# Finish reasons of a reply that stopped before its end, so that it can be continued
# (stream(..., continue_last=True)). Here, not in session.py, so the window can read it
# without importing torch.
CONTINUABLE_REASONS = ("length", "cancelled")


@dataclass
class LoadOptions:
    device: str = "auto"
    context_len: int = 4096
    threads: int = 0  # 0: default for this machine
    adapter: Optional[str] = None  # a LoRA adapter folder (PEFT layout) to put on the model


@dataclass
class ModelInfo:
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

    def to_dict(self) -> dict:
        return asdict(self)


class ChatBackend:
    def __init__(self, loader: Optional[Callable[..., Any]] = None) -> None:
        self._loader = loader  # None: chatapp.engine.loader.load_model
        self.loaded = None  # LoadedModel
        self.engine = None  # Engine
        self.info: Optional[ModelInfo] = None
        self.reply = None  # the last Reply
        self.dropped_messages = 0
        self.contained_markers = False  # the last prompt's messages held chat-template markers (read as text)

    def load(self, spec: str, options: LoadOptions,
             progress: Optional[Callable[[str, float], None]] = None) -> ModelInfo:
        """Load `spec`; on failure the previously loaded model stays in place."""
        import torch

        from .device import default_threads, estimate_memory
        from .generate import Engine
        from .loader import load_model

        torch.set_num_threads(options.threads or default_threads())
        loader = self._loader or load_model
        extra = {"adapter": options.adapter} if options.adapter else {}  # fakes need not know adapters
        loaded = loader(spec, device=options.device, context_len=options.context_len, progress=progress, **extra)
        context = min(options.context_len, loaded.config.max_seq_len)
        engine = Engine(loaded.model, loaded.tokenizer, context_len=context)
        estimate = estimate_memory(loaded.config, context, loaded.dtype)
        self.loaded, self.engine = loaded, engine
        self.info = ModelInfo(
            name=loaded.name, path=str(loaded.path), kind=loaded.kind, device=str(loaded.device),
            dtype=str(loaded.dtype).replace("torch.", ""), context_len=context,
            n_params=loaded.config.n_params, load_s=loaded.load_s,
            memory=estimate.describe(), memory_parts=estimate.parts(),
            adapter=str(options.adapter or ""))
        return self.info

    def estimate(self, spec: str, options: LoadOptions) -> dict:
        """Memory a load of `spec` would need, read from its config only (see loader.estimate_model)."""
        from .loader import estimate_model

        return estimate_model(spec, device=options.device, context_len=options.context_len)

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
               cancel: Optional[threading.Event] = None, continue_last: bool = False) -> Iterator[str]:
        """Reply to `messages` (ending with the user's) with SamplingSettings `settings`, or with
        `continue_last`, write on from the end of the last (assistant) message; afterwards
        `reply` holds the new text and its stats."""
        from .session import ChatSession

        if self.engine is None:
            raise RuntimeError("no model is loaded")
        session = ChatSession(self.engine, system_prompt=system_prompt, messages=messages)
        yield from (session.continue_reply if continue_last else session.respond)(settings, cancel)
        self.reply = session.reply
        self.dropped_messages = session.dropped_messages
        self.contained_markers = session.contained_markers

    def context_used(self) -> int:
        return self.engine.cached_tokens if self.engine else 0
