"""Sampling: small pure functions on a logits vector, and the settings that choose them.

Order (as in llama.cpp and transformers): repetition penalty, then temperature, then the
top-k / top-p / min-p filters, then a draw from the seeded generator. Temperature 0 is greedy.
"""

from __future__ import annotations

from typing import Optional

import torch

# The settings themselves (defaults, ranges) are defined once, without torch, there.
from ..sampling_settings import SamplingSettings, SettingsError  # noqa: F401  (re-exported)


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty on tokens already seen: positive logits divided, negative multiplied."""
    if penalty == 1.0 or previous.numel() == 0:
        return logits
    seen = torch.unique(previous)
    picked = logits[seen]
    logits = logits.clone()
    logits[seen] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits (ties with the k-th kept too); others become -inf."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches p (always >= 1)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    # Drop a token when the tokens before it already reach p.
    drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= p
    drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Drop tokens whose probability is below min_p times the top token's probability."""
    if min_p <= 0.0:
        return logits
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(), float("-inf"))


def sample_next(logits: torch.Tensor, settings: SamplingSettings, previous: torch.Tensor,
                generator: Optional[torch.Generator]) -> int:
    """One token id from a (vocab,) logits vector."""
    logits = apply_repetition_penalty(logits.float(), previous, settings.repetition_penalty)
    if settings.greedy:
        return int(torch.argmax(logits))
    logits = logits / settings.temperature
    candidates = None
    if 0 < settings.top_k < logits.shape[-1]:
        # Work on the k best only: top-p's sort then costs k log k, not vocab log vocab.
        logits, candidates = torch.topk(logits, settings.top_k)
    logits = top_p_filter(logits, settings.top_p)
    logits = min_p_filter(logits, settings.min_p)
    choice = int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
    return int(candidates[choice]) if candidates is not None else choice
