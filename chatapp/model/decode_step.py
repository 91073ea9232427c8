"""The one-token decode step, compiled whole by torch.compile where a compiler works.

A decode step of a small model is mostly not arithmetic: about a thousand small eager
operators (norms, RoPE, attention, cache writes) plus a Python call per product. Compiled as
one graph (gpt-fast's recipe) they become a few fused loops. That needs a step with fixed
shapes and no Python value read from a tensor: `Transformer.forward_static` writes the keys at
the position tensor and attends over a fixed number of cached positions, `kv_len`.

Two sizes are dynamic (`mark_dynamic`), every other shape is a constant of the graph (the
weights, one token): the number of cached positions a step attends over, the position rounded
up to a multiple of BUCKET (at most the cache length), so a step reads the keys a reply needs,
not the whole context; and the length of the full KV caches, the context. So one graph serves
every position and every context length, in one process (the user changes the context, or
loads another model of the same shapes) and, through inductor's disk cache, across processes.
A graph per length (`dynamic=False` throughout) compiled 1.5 minutes of CPU each, cold, on this
2-core machine. Dynamo keeps a module's buffers (the caches) static whatever `mark_dynamic` says
unless `force_parameter_static_shapes` is off, so the step's calls run with that off and with
`automatic_dynamic_shapes` off (`_DYNAMIC`): nothing else turns dynamic (another model's
weights of other shapes compile a graph of their own with constant shapes, as before). Two
graphs at most per model shape: a model whose sliding-window layers keep a ring
(window_cache.py) at long contexts has full caches on every layer at short ones.
`DecodeStep.warm_up` compiles it at load.

Modes, as the compact products (quant_products.py): "auto" compiles where the probe finds a
working C++ compiler, never in a packaged app, on the CPU only; "eager" / "compiled" force one
(CHATAPP_DECODE_COMPILE=0 / 1 for the loader). Models the step cannot take as one graph run
eagerly, with the reason logged: mixture-of-experts layers (the router's choice picks which
weights are read). A compiled step that fails logs it once and eager takes over.

LoRA adapters are in the graph: their weights are its inputs (read at every call, so an adapter
copied in place is never stale), their rank is marked dynamic and their on/off switch and
scaling are read from a tensor (LoRALinear.lora_gate): switching an adapter off and on, or to
another of the same targets, takes the same graph. Another set of target layers, or none (the
adapter taken off), is another structure: one more graph, compiled when first stepped.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Optional

import torch
from torch import nn

from .attention import KVCache
from .config import ModelConfig
from .linear import configure_fast_paths
from .lora import lora_layers
from .moe import MoE
from .quant_products import compiler_available, compiler_on_path
from .window_cache import WindowKVCache

log = logging.getLogger(__name__)

MODES = ("auto", "eager", "compiled")
BUCKET = 256  # cached positions a compiled step attends over: a multiple of this past the position
# Dynamo's settings for the compiled step's calls (compiles happen inside them): the caches' marked
# length dynamic (buffers are static otherwise), no other size turned dynamic behind our back.
_DYNAMIC = dict(force_parameter_static_shapes=False, automatic_dynamic_shapes=False)


def kv_length(position: int, cache_len: int) -> int:
    """Positions a step at `position` attends over: the next multiple of BUCKET past it, at
    most the cache length."""
    return min((position // BUCKET + 1) * BUCKET, cache_len)


def unsupported_reason(model: nn.Module | ModelConfig) -> Optional[str]:
    """Why `model`'s decode step cannot be compiled as one graph, or None when it can. A
    ModelConfig: the same answer for the model it builds, before loading (memory estimates)."""
    if isinstance(model, ModelConfig):
        moe = model.n_moe_layers > 0
    elif not hasattr(model, "forward_static"):
        return "the model has no static decode step"
    else:
        moe = any(isinstance(m, MoE) for m in model.modules())
    if moe:
        return "mixture-of-experts routing decides which weights a step reads"
    return None


def compiled_step_expected(config: Optional[ModelConfig] = None) -> bool:
    """Whether a load with the loader's default would compile the step, without compiling anything
    (for memory estimates): a compiler on the path, or CHATAPP_DECODE_COMPILE=1; never with =0,
    nor for a model the step cannot take (unsupported_reason of `config`)."""
    forced = os.environ.get("CHATAPP_DECODE_COMPILE")
    if forced == "0" or (config is not None and unsupported_reason(config)):
        return False
    return forced == "1" or compiler_on_path()


class DecodeStep:
    """Runs `model`'s one-token steps: compiled (forward_static) or eager (forward)."""

    def __init__(self, model: nn.Module, mode: str = "auto", dynamic_context: bool = True) -> None:
        """dynamic_context False: the caches' length is a constant of the graph, a compile per
        context length (as before; benchmarks/quant_step.py compares the two)."""
        if mode not in MODES:
            raise ValueError(f"unknown decode step mode {mode!r}; one of {', '.join(MODES)}")
        self.model = model
        self.dynamic_context = dynamic_context
        self._fn: Optional[Callable] = None
        self._last = -2  # the last position stepped
        self.reason = "eager as asked" if mode == "eager" else ""
        if mode != "eager":
            self.reason = self._why_not(mode) or ""
            if not self.reason:
                import torch._dynamo

                # a graph per model loaded (side by side, or one after another in a process)
                torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
                # dynamic=None: static shapes but for the one marked dynamic (key_pos's length)
                self._fn = torch.compile(model.forward_static, fullgraph=True)
        log.info("decode step: %s", "compiled" if self._fn is not None else f"eager ({self.reason})")

    def _why_not(self, mode: str) -> Optional[str]:
        reason = unsupported_reason(self.model)
        if reason:
            return reason
        device = next(self.model.parameters()).device
        if device.type != "cpu":
            return f"compiled steps are used on the CPU only (the model is on {device.type})"
        if mode == "auto" and not compiler_available():
            return "no working C++ compiler for torch.compile (or a packaged app)"
        return None

    @property
    def compiled(self) -> bool:
        return self._fn is not None

    def _key_pos(self, position: int) -> torch.Tensor:
        """arange(kv_length) (S,), its length marked dynamic for the compiled step."""
        key_pos = torch.arange(kv_length(position, self.model.cache_len), device=self.model.norm.weight.device)
        torch._dynamo.mark_dynamic(key_pos, 0)
        return key_pos

    def _run(self, tokens: torch.Tensor, input_pos: torch.Tensor, position: int, caches: list) -> torch.Tensor:
        """The compiled step, the full caches' length marked dynamic first, on every cache
        (setup_cache makes new tensors): a graph compiled on an unmarked cache would take its
        length as a constant."""
        if not self.dynamic_context:
            return self._fn(tokens, input_pos, self._key_pos(position))
        for cache in caches:
            if isinstance(cache, KVCache) and not hasattr(cache.k, "_dynamo_dynamic_indices"):
                torch._dynamo.mark_dynamic(cache.k, 2)  # (B, Hkv, context + 1, D)
                torch._dynamo.mark_dynamic(cache.v, 2)
        with torch._dynamo.config.patch(**_DYNAMIC):
            return self._fn(tokens, input_pos, self._key_pos(position))

    def __call__(self, tokens: torch.Tensor, input_pos: torch.Tensor, position: int) -> torch.Tensor:
        """tokens (B, 1) at input_pos (1,) holding `position` -> logits (B, 1, V)."""
        model = self.model
        if position != self._last + 1 and self._fn is not None:  # a new reply (positions follow within one)
            # Looked for once per reply: a scan of the modules costs ~0.25 ms, adapters change
            # between replies only (one that slipped past unmarked still takes the graph: only
            # the graph's first compile needs the marks).
            mark_adapter_ranks(model)
        self._last = position
        if self._fn is None or not model.cache_len:
            return model(tokens, input_pos)
        caches = [b.attn.kv_cache for b in model.layers]
        windows = [c for c in caches if isinstance(c, WindowKVCache)]
        if position >= model.cache_len or not all(c.can_resume(position) for c in windows):
            return model(tokens, input_pos)  # the eager step says what is wrong
        try:
            logits = self._run(tokens, input_pos, position, caches)
        except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop a reply
            log.warning("the compiled decode step failed (%s); decoding eagerly from now on", exc)
            self._fn, self.reason = None, f"the compiled step failed: {exc}"
            return model(tokens, input_pos)
        for cache in windows:
            cache.advance(position, 1)
        return logits

    @torch.inference_mode()
    def warm_up(self) -> bool:
        """Compile the step now (at load) rather than in a reply: one step at the cache's last
        position, the cache cleared afterwards. Returns whether the step is compiled."""
        model = self.model
        if self._fn is None or not model.cache_len:
            return False
        # The engine's inference layout (Engine.__init__), set first: the graph is built on it,
        # and changing it afterwards (strides, split products) would compile it again.
        configure_fast_paths(model, decode_split=torch.get_num_threads(), onednn=True, column_major=True)
        position = min(BUCKET, model.cache_len) - 1  # no checks (a sliding window would refuse): cleared after
        mark_adapter_ranks(model)
        token = torch.zeros(1, 1, dtype=torch.long, device=model.norm.weight.device)
        try:
            self._run(token, torch.tensor([position], device=token.device), position,
                      [b.attn.kv_cache for b in model.layers])
        except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop a load
            log.warning("the decode step did not compile (%s); decoding eagerly", exc)
            self._fn, self.reason = None, f"the compiled step failed: {exc}"
        clear_cache_contents(model)
        return self._fn is not None


def mark_adapter_ranks(model: nn.Module) -> None:
    """Mark each LoRA layer's rank dynamic (A (r, in), B (out, r)), so that a graph compiled on
    one adapter serves adapters of other ranks. maybe_: a rank of 1 is a constant to dynamo."""
    for _, layer in lora_layers(model):
        if not hasattr(layer.lora_A, "_dynamo_weak_dynamic_indices"):
            torch._dynamo.maybe_mark_dynamic(layer.lora_A, 0)
            torch._dynamo.maybe_mark_dynamic(layer.lora_B, 1)


def clear_cache_contents(model: nn.Module) -> None:
    """Empty every layer's KV cache in place (same tensors, so compiled steps stay valid)."""
    for block in model.layers:
        cache = block.attn.kv_cache
        if cache is None:
            continue
        cache.k.zero_()
        cache.v.zero_()
        if isinstance(cache, WindowKVCache):
            cache.pos.fill_(-1)
            cache.advance(0, 0)
