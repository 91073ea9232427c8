"""Sampling: small pure functions on a logits vector, and the settings that choose them.

Order (as in llama.cpp and transformers): repetition penalty, then temperature, then the
top-k / top-p / min-p filters, then a draw from the seeded generator. Temperature 0 is greedy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch


class SettingsError(ValueError):
    """A sampling setting out of range; the message names the setting and its range."""


@dataclass
class SamplingSettings:
    temperature: float = 0.7
    top_k: int = 40  # 0: off
    top_p: float = 0.95  # 1.0: off
    min_p: float = 0.05  # 0.0: off
    repetition_penalty: float = 1.1  # 1.0: off
    max_new_tokens: int = 512
    repeat_last_n: int = 64  # how many recent tokens the repetition penalty looks at; 0: all
    seed: Optional[int] = None  # None: a fresh random seed per reply
    stop: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise SettingsError(f"temperature must be between 0 and 5, got {self.temperature}")
        if self.top_k < 0:
            raise SettingsError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise SettingsError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_p < 1.0:
            raise SettingsError(f"min_p must be in [0, 1), got {self.min_p}")
        if not 0.5 <= self.repetition_penalty <= 3.0:
            raise SettingsError(f"repetition_penalty must be between 0.5 and 3, got {self.repetition_penalty}")
        if self.repeat_last_n < 0:
            raise SettingsError(f"repeat_last_n must be 0 (all) or positive, got {self.repeat_last_n}")
        if self.max_new_tokens <= 0:
            raise SettingsError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise SettingsError("stop strings must be non-empty text")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict:
        return asdict(self)


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
