"""Attention with soft-capped scores (Gemma 2), which scaled_dot_product_attention cannot do.

Gemma 2 squashes every attention score through cap * tanh(score / cap) after scaling and before
the mask and softmax; SDPA's kernels take the scores straight to the softmax, so this path
computes them explicitly (as transformers' eager attention does). Queries are grouped by their
key/value head instead of copying the keys and values once per query head.
"""

from __future__ import annotations

from typing import Optional

import torch


def softcap_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                      scale: float, softcap: float) -> torch.Tensor:
    """q (B, H, T, D), k and v (B, Hkv, S, D), mask (T, S) bool (True: may attend) or None for
    causal attention when S == T -> (B, H, T, D)."""
    batch, n_heads, seq, head_dim = q.shape
    n_kv_heads, keys = k.shape[1], k.shape[2]
    group = n_heads // n_kv_heads
    if mask is None and seq > 1:
        mask = torch.ones(seq, keys, dtype=torch.bool, device=q.device).tril(keys - seq)
    # (B, H, T, D) -> (B, Hkv, G, T, D): query head h uses key/value head h // G
    q = q.view(batch, n_kv_heads, group, seq, head_dim)
    scores = torch.matmul(q, k.unsqueeze(2).transpose(-1, -2)) * scale  # (B, Hkv, G, T, S)
    scores = torch.tanh(scores / softcap) * softcap
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    out = torch.matmul(weights, v.unsqueeze(2))  # (B, Hkv, G, T, D)
    return out.view(batch, n_heads, seq, head_dim)


def softcap_logits(logits: torch.Tensor, softcap: float) -> torch.Tensor:
    """cap * tanh(logits / cap): Gemma's final logit soft-capping."""
    return torch.tanh(logits / softcap) * softcap
