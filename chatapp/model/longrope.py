"""LongRoPE (Phi-3 / Phi-3.5 / Phi-4-mini's "longrope", formerly "su") RoPE scaling.

Each rotated frequency pair i has its own divisor: inv_freq_i = 1 / (factor_i * theta^(2i/d)),
from `short_factor` for contexts up to `original_max_position_embeddings` and from
`long_factor` past it; cos and sin are multiplied by an attention factor (LongRoPE's default
sqrt(1 + ln(factor) / ln(original)) where factor = context / original).

Which list applies: transformers picks it per forward call from that call's last position,
so its cached decode switches lists mid-sequence once the text grows past the original length
(keys cached under the short list are then read with queries under the long one). We pick it
once for the context a run can hold, as llama.cpp does (its n_ctx): the KV cache length when
there is a cache, else the sequence's length. A plain forward pass therefore matches
transformers exactly, and a cached run is consistent with a full pass over the same context.
"""

from __future__ import annotations

import math

import torch

from .config import RopeScaling


def longrope_inv_freqs(rotary_dim: int, theta: float, scaling: RopeScaling) -> tuple[torch.Tensor, torch.Tensor]:
    """(short, long) inverse frequencies, each (rotary_dim // 2,) float32."""
    exponents = torch.arange(0, rotary_dim, 2, dtype=torch.int64).float() / rotary_dim  # (rotary_dim/2,)
    base = theta ** exponents
    short = 1.0 / (torch.tensor(scaling.short_factor, dtype=torch.float32) * base)
    long = 1.0 / (torch.tensor(scaling.long_factor, dtype=torch.float32) * base)
    return short, long


def longrope_attention_factor(scaling: RopeScaling) -> float:
    """The factor cos and sin are multiplied by: the config's, else LongRoPE's default."""
    if scaling.attention_factor is not None:
        return float(scaling.attention_factor)
    if scaling.factor <= 1.0:
        return 1.0
    return math.sqrt(1 + math.log(scaling.factor) / math.log(scaling.original_max_position_embeddings))


def uses_long_factors(scaling: RopeScaling, context: int) -> bool:
    """Whether a run over `context` positions uses long_factor (past the original length)."""
    return context > scaling.original_max_position_embeddings
