"""Mixture of experts (Mixtral, Qwen3-MoE): a router picks top-k SwiGLU experts per token.

The experts' weights are stacked, one tensor per projection, as llama.cpp stores them
(`ffn_gate_exps` ...) and transformers 5 holds them in memory:
    gate_exps, up_exps (n_experts, moe_intermediate, dim); down_exps (n_experts, dim, moe_intermediate).
A token's output is sum over its top-k experts e of weight_e * expert_e(x). Only the experts some
token chose are run, each on just the tokens that chose it: a decode step (one token) reads
k experts' weights and leaves the others untouched.

Routing follows the references: softmax over all experts' logits in float32, top-k of the
probabilities, then (Mixtral always, Qwen3-MoE when `norm_topk_prob`) renormalised to sum 1.

LoRA: the stacked experts are plain parameters, not Linear layers, so LoRA never wraps them
(nor the router); in a MoE layer LoRA adapts the attention projections only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .linear import Linear


def route(router_logits: torch.Tensor, top_k: int, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, E) logits -> weights (N, k) in the logits' dtype and expert indices (N, k) int64."""
    probs = F.softmax(router_logits, dim=-1, dtype=torch.float32)
    weights, experts = torch.topk(probs, top_k, dim=-1)
    if normalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights.to(router_logits.dtype), experts


class MoE(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        n, hidden, dim = config.n_experts, config.moe_intermediate_size, config.dim
        self.top_k = config.n_experts_per_tok
        self.normalize = config.norm_topk_prob
        self.router = Linear(dim, n, bias=False)
        self.gate_exps = nn.Parameter(torch.empty(n, hidden, dim))
        self.up_exps = nn.Parameter(torch.empty(n, hidden, dim))
        self.down_exps = nn.Parameter(torch.empty(n, dim, hidden))
        for weight in (self.gate_exps, self.up_exps, self.down_exps):
            nn.init.normal_(weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])  # (B, T, dim) -> (N, dim)
        weights, experts = route(self.router(flat), self.top_k, self.normalize)  # (N, k) each
        out = torch.zeros_like(flat)
        # The experts chosen by at least one token, in ascending order; only these are read.
        for expert in torch.unique(experts).tolist():
            token, slot = torch.where(experts == expert)  # which tokens, and in which of their k slots
            rows = flat[token]  # (n_e, dim)
            hidden = F.silu(F.linear(rows, self.gate_exps[expert])) * F.linear(rows, self.up_exps[expert])
            y = F.linear(hidden, self.down_exps[expert]) * weights[token, slot, None]  # (n_e, dim)
            # A token picks an expert at most once, so `token` has no repeats: a plain indexed add.
            # (index_add_ is ~100x slower here on CPU: it runs scatter_add_, ~50 ms for one row.)
            out[token] += y.to(out.dtype)
        return out.reshape(shape)
