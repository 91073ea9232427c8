"""Sampling: small pure functions on a logits vector, and the settings that choose them.

Order (as in llama.cpp and transformers): repetition penalty, then OpenAI's additive
frequency/presence penalties (only when asked for: `ApiSamplingSettings`), then temperature,
then the top-k / top-p / min-p filters, then a draw from the seeded generator. Temperature 0
is greedy. `sample_with_prob` also says the probability the draw gave the chosen token under
those transforms (1.0 for greedy: the argmax is certain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

# The settings themselves (defaults, ranges) are defined once, without torch, there.
from ..sampling_settings import SamplingSettings, SettingsError  # noqa: F401  (re-exported)


@dataclass
class ApiSamplingSettings(SamplingSettings):
    """The settings plus the OpenAI API's additive penalties (the HTTP server's requests).

    As OpenAI defines them: logit[j] -= c[j] * frequency_penalty + (c[j] > 0) * presence_penalty,
    c[j] how often token j was sampled so far in this reply (the prompt does not count).
    """

    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    def validate(self) -> None:
        super().validate()
        for name in ("frequency_penalty", "presence_penalty"):
            value = getattr(self, name)
            if not -2.0 <= value <= 2.0:
                raise SettingsError(f"{name} must be between -2 and 2, got {value}")

    @property
    def has_additive_penalties(self) -> bool:
        return self.frequency_penalty != 0.0 or self.presence_penalty != 0.0


def apply_additive_penalties(logits: torch.Tensor, counts: torch.Tensor, frequency: float,
                             presence: float) -> torch.Tensor:
    """OpenAI's penalties: `counts` (vocab,) how often each token was sampled in this reply."""
    if frequency == 0.0 and presence == 0.0:
        return logits
    counts = counts.to(logits.dtype)
    return logits - counts * frequency - (counts > 0).to(logits.dtype) * presence


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


def sample_with_prob(logits: torch.Tensor, settings: SamplingSettings, previous: torch.Tensor,
                     generator: Optional[torch.Generator],
                     counts: Optional[torch.Tensor] = None) -> tuple[int, float]:
    """One token id from a (vocab,) logits vector, and the probability the sampler gave it
    under the transforms in force (1.0 for greedy). `counts`: the reply's token counts, for
    the additive penalties of `ApiSamplingSettings` (ignored without them)."""
    logits = apply_repetition_penalty(logits.float(), previous, settings.repetition_penalty)
    if counts is not None and getattr(settings, "has_additive_penalties", False):
        logits = apply_additive_penalties(logits, counts, settings.frequency_penalty, settings.presence_penalty)
    if settings.greedy:
        return int(torch.argmax(logits)), 1.0
    logits = logits / settings.temperature
    candidates = None
    if 0 < settings.top_k < logits.shape[-1]:
        # Work on the k best only: top-p's sort then costs k log k, not vocab log vocab.
        logits, candidates = torch.topk(logits, settings.top_k)
    logits = top_p_filter(logits, settings.top_p)
    logits = min_p_filter(logits, settings.min_p)
    probs = logits.softmax(-1)
    choice = int(torch.multinomial(probs, 1, generator=generator))
    token = int(candidates[choice]) if candidates is not None else choice
    return token, float(probs[choice])


def sample_next(logits: torch.Tensor, settings: SamplingSettings, previous: torch.Tensor,
                generator: Optional[torch.Generator], counts: Optional[torch.Tensor] = None) -> int:
    """One token id from a (vocab,) logits vector."""
    return sample_with_prob(logits, settings, previous, generator, counts)[0]
