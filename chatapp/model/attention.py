"""Multi-head / grouped-query attention with a preallocated KV cache."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import apply_rope, make_norm
from .linear import Linear
from .softcap_attention import softcap_attention
from .window_cache import WindowKVCache


class KVCache(nn.Module):
    """Keys and values for every position up to max_seq_len, written in place at input_pos.

    The tensors hold one slot more, never written: a compiled decode step's dynamic length
    (update_static's kv_len) is then always shorter than the tensor, so torch.compile cannot
    turn the last length into a constant (a slice to the full size is a special case)."""

    def __init__(self, batch_size: int, n_kv_heads: int, max_seq_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str | None = None) -> None:
        super().__init__()
        shape = (batch_size, n_kv_heads, max_seq_len + 1, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor, end: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, Hkv, T, D) at input_pos (T,); return the cache up to `end` positions."""
        batch = k.shape[0]
        self.k[:batch, :, input_pos] = k
        self.v[:batch, :, input_pos] = v
        return self.k[:batch, :, :end], self.v[:batch, :, :end]

    def update_static(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_len: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """As update, for a compiled decode step: written with index_copy_ at the position
        tensor (no Python int read from it), the first `kv_len` positions returned (a fixed
        length chosen by the caller, so the shapes do not change with the position)."""
        batch = k.shape[0]
        self.k[:batch].index_copy_(2, input_pos, k)
        self.v[:batch].index_copy_(2, input_pos, v)
        return self.k[:batch, :, :kv_len], self.v[:batch, :, :kv_len]


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.use_rope = config.positions == "rope"
        self.q_proj = Linear(config.dim, config.n_heads * config.head_dim, bias=config.qkv_bias)
        self.k_proj = Linear(config.dim, config.n_kv_heads * config.head_dim, bias=config.qkv_bias)
        self.v_proj = Linear(config.dim, config.n_kv_heads * config.head_dim, bias=config.qkv_bias)
        self.o_proj = Linear(config.n_heads * config.head_dim, config.dim, bias=config.o_bias)
        if config.qk_norm:  # Qwen3, Gemma 3: one norm over head_dim, shared by all heads
            self.q_norm = make_norm(config, config.head_dim)
            self.k_norm = make_norm(config, config.head_dim)
        self.qk_norm = config.qk_norm
        self.scale = config.attn_scale  # None: SDPA's 1 / sqrt(head_dim)
        self.softcap = config.attn_softcap
        self.kv_cache: Optional[KVCache | WindowKVCache] = None

    def forward(self, x: torch.Tensor, rope: Optional[tuple[torch.Tensor, torch.Tensor]],
                input_pos: Optional[torch.Tensor], mask: Optional[torch.Tensor], end: int,
                static: bool = False) -> torch.Tensor:
        """static: a compiled decode step's call (Transformer.forward_static): `end` is the fixed
        number of cached positions to attend over and `mask` covers them (every layer has one)."""
        batch, seq, _ = x.shape
        # (B, T, H*D) -> (B, T, H, D) -> (B, H, T, D)
        q = self.q_proj(x).view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, seq, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, seq, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.qk_norm:  # before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        if self.use_rope:
            cos, sin = rope
            q = apply_rope(q, cos, sin)
            k = apply_rope(k, cos, sin)
        if static and isinstance(self.kv_cache, WindowKVCache):
            k, v, mask = self.kv_cache.update_static(input_pos, k, v)
        elif static:
            k, v = self.kv_cache.update_static(input_pos, k, v, end)  # (B, Hkv, end, D)
        elif isinstance(self.kv_cache, WindowKVCache):
            k, v, mask = self.kv_cache.update(input_pos, k, v)  # the ring's keys, its own mask
        elif self.kv_cache is not None:
            k, v = self.kv_cache.update(input_pos, k, v, end)  # (B, Hkv, end, D)
        if self.softcap is not None:
            scale = self.scale if self.scale is not None else self.head_dim ** -0.5
            out = softcap_attention(q, k, v, mask, scale, self.softcap)
        elif mask is None:
            # Fresh sequence from position 0 (no cache, no window): plain causal attention.
            out = F.scaled_dot_product_attention(q, k, v, is_causal=seq > 1, scale=self.scale,
                                                 enable_gqa=self.n_kv_heads != self.n_heads)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale,
                                                 enable_gqa=self.n_kv_heads != self.n_heads)
        # (B, H, T, D) -> (B, T, H*D)
        out = out.transpose(1, 2).reshape(batch, seq, self.n_heads * self.head_dim)
        return self.o_proj(out)
