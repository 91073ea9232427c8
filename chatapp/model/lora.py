"""LoRA: low-rank adapters on the model's Linear layers (https://arxiv.org/abs/2106.09685).

A LoRALinear keeps the pretrained weight frozen and learns a low-rank update beside it:

    y = x W^T + b  +  scaling * dropout(x) A^T B^T        A: (r, in), B: (out, r)

B starts at zero, so a fresh adapter leaves the model's outputs unchanged. The wrapper holds
the Linear itself as `base_layer` (PEFT's name; no copy) and runs the base product through it,
so the base layer's fast paths (chatapp/model/linear.py) apply as they are configured, and
removing the adapter puts the very same layer back. Its parameters appear as
`<module>.base_layer.weight` while the adapter is on (`base_names` maps them back), and the
adapter adds `<module>.lora_A` and `<module>.lora_B`.

On a compact base (a QuantLinear: int8/int4 weights, chatapp/model/quant.py) the adapter is
float32 and the base product is dequantized on the fly, in row chunks, in the forward pass
and again in the backward pass (`CompactProduct`): autograd never keeps a float copy of a
base weight, so training holds the compact weights plus the adapter. Inference (no gradient
wanted) runs the compact layer's own products, decode's one-row product included, and adds the
float32 delta: chatting with an adapter over int8/int4 holds the compact weights plus the
adapter. Such a base cannot be merged into (its weight is not float); save the adapter and
merge it into a float base instead.

Pure torch and no I/O: the PEFT file format lives in chatapp/weights/peft_adapter.py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .quant import QuantLinear, chunk_rows


# Our Linear module names (last path component) that can carry an adapter.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoRAConfig:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    use_rslora: bool = False  # scaling alpha / sqrt(r) instead of alpha / r (PEFT's option)

    def __post_init__(self) -> None:
        self.target_modules = list(self.target_modules)
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {self.r!r}")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise ValueError(f"LoRA alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules:
            raise ValueError("LoRA target_modules is empty")
        unknown = [m for m in self.target_modules if m not in LORA_TARGETS]
        if unknown:
            raise ValueError(f"unknown LoRA target modules {unknown}; known: {', '.join(LORA_TARGETS)}")
        if len(set(self.target_modules)) != len(self.target_modules):
            raise ValueError(f"LoRA target_modules has duplicates: {self.target_modules}")

    @property
    def scaling(self) -> float:
        return self.alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoRAConfig":
        return cls(**data)


class CompactProduct(torch.autograd.Function):
    """x W^T for a QuantLinear's W, dequantized a chunk of rows at a time in forward and again in
    backward (grad_x = grad_out W); only the compact parts are kept for backward. W is frozen."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: QuantLinear) -> torch.Tensor:  # type: ignore[override]
        ctx.layer = layer
        rows = x.reshape(-1, layer.in_features).float()  # (M, in)
        step = chunk_rows(layer.in_features) * 8
        deq = layer.row_dequantizer()
        out = torch.cat([F.linear(rows, deq(i, i + step)) for i in range(0, layer.out_features, step)],
                        dim=-1)  # (M, out)
        return out.view(*x.shape[:-1], layer.out_features)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        layer = ctx.layer
        g = grad_out.reshape(-1, layer.out_features).float()  # (M, out)
        step = chunk_rows(layer.in_features) * 8
        deq = layer.row_dequantizer()
        grad_x = None
        for i in range(0, layer.out_features, step):
            part = g[:, i:i + step] @ deq(i, i + step)  # (M, in)
            grad_x = part if grad_x is None else grad_x + part
        return grad_x.view(*grad_out.shape[:-1], layer.in_features), None


def _base_product(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The base layer's output; a compact one through CompactProduct while gradients are wanted."""
    if isinstance(layer, QuantLinear) and torch.is_grad_enabled() and x.requires_grad:
        out = CompactProduct.apply(x, layer)
        if layer.bias is not None:
            out = out + layer.bias
        return out.to(x.dtype)
    return layer(x)


class LoRALinear(nn.Module):
    """An nn.Linear (or a compact QuantLinear) plus a low-rank update; see the module docstring."""

    def __init__(self, linear: nn.Module, r: int, alpha: float, dropout: float = 0.0,
                 use_rslora: bool = False, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        self.base_layer = linear  # wrapped, not copied: its weights and its fast-path settings
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.compact = isinstance(linear, QuantLinear)
        if not self.compact:
            self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.r = r
        self.scaling = alpha / (math.sqrt(r) if use_rslora else r)
        if self.compact:  # float32 adapters beside int8/int4 codes
            factory = dict(device=linear.qweight.device, dtype=dtype or torch.float32)
        else:
            factory = dict(device=linear.weight.device, dtype=dtype or linear.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(self.out_features, r, **factory))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False  # True while B @ A * scaling is folded into `weight`
        self._enabled = True
        # scaling while enabled, 0 while not: what a compiled decode step multiplies by, so that
        # neither the switch nor the scaling is a constant of its graph (model/decode_step.py)
        self.register_buffer("lora_gate", torch.tensor(self.scaling, **factory), persistent=False)
        self.reset_lora_parameters()

    @property
    def weight(self) -> nn.Parameter:
        if self.compact:
            raise AttributeError("a compact (int8/int4) base layer has no float weight")
        return self.base_layer.weight

    @property
    def bias(self) -> Optional[nn.Parameter]:
        return self.base_layer.bias

    def reset_lora_parameters(self) -> None:
        # A as nn.Linear initialises its weight (PEFT does the same), B zero: a no-op at start.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def delta_weight(self) -> torch.Tensor:
        """The update B @ A * scaling, shaped like `weight` (out, in), in `weight`'s dtype."""
        return ((self.lora_B @ self.lora_A) * self.scaling).to(self.weight.dtype)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        # A merged update cannot be switched off by skipping the LoRA path: take it out first.
        if not value and self.merged:
            self.unmerge()
        self._enabled = bool(value)
        self.lora_gate.fill_(self.scaling if self._enabled else 0.0)

    @torch.no_grad()
    def merge(self) -> None:
        if self.compact:
            raise ValueError(f"cannot merge a LoRA adapter into {self.base_layer.kind} weights: save the "
                             "adapter and merge it into the model loaded in float32 (or bf16 / float16)")
        if not self.merged and self._enabled:
            self.weight.add_(self.delta_weight())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.weight.sub_(self.delta_weight())
            self.merged = False

    def to_linear(self) -> nn.Linear:
        """The wrapped layer, with its base weight as it is now (merged or not)."""
        self.base_layer.train(self.training)
        return self.base_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _base_product(self.base_layer, x)
        if self.merged:
            return out
        if torch.compiler.is_compiling():
            # Traced (the compiled decode step): the switch and the scaling come from the gate
            # tensor, read at run time, so switching or swapping adapters reuses the graph.
            scale = self.lora_gate
        elif not self._enabled:
            return out
        else:
            scale = self.scaling
        # The LoRA path runs in the adapter's dtype (float32 adapters over bf16 weights work).
        h = self.lora_dropout(x).to(self.lora_A.dtype)
        lora = F.linear(F.linear(h, self.lora_A), self.lora_B) * scale  # (..., r) -> (..., out)
        return out + lora.to(out.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"scaling={self.scaling:g}, merged={self.merged}, enabled={self._enabled}"
                + (f", base={self.base_layer.kind}" if self.compact else ""))


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    """(qualified name, layer) for every LoRALinear in `model`."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def has_lora(model: nn.Module) -> bool:
    return next(lora_layers(model), None) is not None


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def apply_lora(model: nn.Module, config: LoRAConfig, dtype: Optional[torch.dtype] = None) -> nn.Module:
    """Wrap every target nn.Linear of `model` in a LoRALinear, in place; freeze all but LoRA.

    `dtype`: the adapters' dtype, default the base weight's. Returns `model`.
    """
    if has_lora(model):
        raise ValueError("the model already has LoRA layers; remove_lora() or merge_lora() first")
    targets = [name for name, module in model.named_modules()
               if isinstance(module, (nn.Linear, QuantLinear)) and name.rpartition(".")[2] in config.target_modules]
    if not targets:
        raise ValueError(f"the model has no Linear layer named {config.target_modules}")
    for name in targets:
        linear = model.get_submodule(name)
        layer = LoRALinear(linear, config.r, config.alpha, config.dropout, config.use_rslora, dtype)
        layer.train(linear.training)  # a model in eval mode must not start dropping out
        _replace(model, name, layer)
    mark_only_lora_trainable(model)
    return model


def mark_only_lora_trainable(model: nn.Module) -> None:
    for name, param in model.named_parameters():
        param.requires_grad_(_is_lora_param(name))


def base_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` (of a model with LoRA layers) with each base parameter under its plain name:
    `layers.0.attn.q_proj.base_layer.weight` -> `layers.0.attn.q_proj.weight`."""
    return {name.replace(".base_layer.", "."): tensor for name, tensor in state.items()}


def _is_lora_param(name: str) -> bool:
    return name.endswith(".lora_A") or name.endswith(".lora_B")


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's tensors only, in our names: `layers.0.attn.q_proj.lora_A` etc."""
    return {name: param.detach() for name, param in model.named_parameters() if _is_lora_param(name)}


def set_lora_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch every adapter of `model` on or off without unloading it."""
    for _, layer in lora_layers(model):
        layer.enabled = enabled


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold each enabled adapter into its base weight and put plain Linears back. In place.

    A disabled adapter is dropped, not merged: the result is what the model computed.
    """
    for name, layer in list(lora_layers(model)):
        layer.merge()
        _replace(model, name, layer.to_linear())
    return model


def remove_lora(model: nn.Module) -> nn.Module:
    """Drop every adapter (unmerging it first), leaving the base model. In place.

    Parameters keep the requires_grad they had; call requires_grad_() as needed.
    """
    for name, layer in list(lora_layers(model)):
        layer.unmerge()
        _replace(model, name, layer.to_linear())
    return model
