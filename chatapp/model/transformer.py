"""The decoder-only Transformer: forward(tokens, input_pos) -> logits.

The model computes and nothing else. Whoever drives it (the engine, the trainer) decides
whether a KV cache exists (`setup_cache`), which positions are fed, and what to do with
the logits. Prefill and one-token decode are the same call with different `input_pos`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .attention import Attention, KVCache
from .config import ModelConfig
from .layers import make_mlp, make_norm, rope_cos_sin, rope_inv_freq
from .linear import Linear


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = make_norm(config)
        self.attn = Attention(config)
        self.mlp_norm = make_norm(config)
        self.mlp = make_mlp(config)

    def forward(self, x, rope, input_pos, mask, end):
        x = x + self.attn(self.attn_norm(x), rope, input_pos, mask, end)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        if config.positions == "learned":
            self.pos_embeddings = nn.Embedding(config.max_seq_len, config.dim)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = make_norm(config)
        self.lm_head = Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_embeddings.weight
        self.cache_len = 0  # positions the KV cache can hold; 0 means no cache
        self.init_buffers()

    def init_buffers(self, device: torch.device | str | None = None) -> None:
        """(Re)compute non-persistent buffers, e.g. after building on the meta device."""
        if self.config.positions == "rope":
            inv_freq = rope_inv_freq(self.config.head_dim, self.config.rope_theta, self.config.rope_scaling)
            if device is None and self.tok_embeddings.weight.device.type != "meta":
                device = self.tok_embeddings.weight.device
            self.register_buffer("rope_inv_freq", inv_freq.to(device), persistent=False)

    # -- KV cache -------------------------------------------------------------------------
    def setup_cache(self, batch_size: int, max_seq_len: Optional[int] = None,
                    dtype: Optional[torch.dtype] = None) -> None:
        """Allocate a KV cache for `batch_size` sequences of up to `max_seq_len` positions."""
        max_seq_len = max_seq_len or self.config.max_seq_len
        if max_seq_len > self.config.max_seq_len:
            raise ValueError(f"cache length {max_seq_len} exceeds the model's context {self.config.max_seq_len}")
        param = self.norm.weight  # float in every weights option (the embedding may be compact)
        for block in self.layers:
            block.attn.kv_cache = KVCache(batch_size, self.config.n_kv_heads, max_seq_len,
                                          self.config.head_dim, dtype or param.dtype, param.device)
        self.cache_len = max_seq_len

    def clear_cache(self) -> None:
        for block in self.layers:
            block.attn.kv_cache = None
        self.cache_len = 0

    # -- forward --------------------------------------------------------------------------
    def _mask(self, input_pos: torch.Tensor, end: int, cached: bool) -> Optional[torch.Tensor]:
        """Boolean mask (T, end), True where a query may attend; None for plain causal."""
        window = self.config.sliding_window
        seq = input_pos.shape[0]
        fresh = int(input_pos[0]) == 0 and end == seq
        if not cached and not fresh:
            raise ValueError("positions that do not start at 0 need a KV cache (call setup_cache)")
        if window is None or end <= window:
            if fresh:
                return None  # plain causal attention over the whole sequence
            if seq == 1:
                return None  # one new token sees every cached position
        key_pos = torch.arange(end, device=input_pos.device)
        q_pos = input_pos[:, None]
        allowed = key_pos[None, :] <= q_pos  # (T, end)
        if window is not None:
            allowed &= q_pos - key_pos[None, :] < window
        return allowed

    def forward(self, tokens: torch.Tensor, input_pos: Optional[torch.Tensor] = None,
                last_only: bool = False) -> torch.Tensor:
        """tokens (B, T) int64 at positions input_pos (T,), default 0..T-1 -> logits (B, T, V).

        last_only: logits for the last position only, (B, 1, V); a prefill needs no more,
        and the vocabulary projection is a large share of a long prompt's cost.
        """
        batch, seq = tokens.shape
        if input_pos is None:
            input_pos = torch.arange(seq, device=tokens.device)
        end = int(input_pos[-1]) + 1
        limit = self.cache_len or self.config.max_seq_len
        if end > limit:
            raise ValueError(f"position {end - 1} is past the context length {limit}")
        mask = self._mask(input_pos, end, cached=self.cache_len > 0)

        x = self.tok_embeddings(tokens)  # (B, T, dim)
        rope = None
        if self.config.positions == "learned":
            x = x + self.pos_embeddings(input_pos)[None]
        else:
            rope = rope_cos_sin(input_pos, self.rope_inv_freq)
        for block in self.layers:
            x = block(x, rope, input_pos, mask, end)
        if last_only:
            x = x[:, -1:]  # (B, 1, dim)
        return self.lm_head(self.norm(x))
