"""Learning-rate schedule: linear warmup, then cosine decay to a floor (as nanoGPT)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosine:
    """lr(step) for optimizer steps 0..total_steps-1.

    Warmup: lr * (step + 1) / warmup_steps, reaching `lr` at step warmup_steps - 1 (never 0,
    so the first step learns). Then cosine from `lr` at step warmup_steps down to `min_lr` at
    step total_steps; `min_lr` beyond. A pure function of the step: nothing to save but the step.
    """

    lr: float
    warmup_steps: int
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr and lr > 0, got lr={self.lr}, min_lr={self.min_lr}")
        if self.warmup_steps < 0 or self.total_steps <= 0:
            raise ValueError(f"need warmup_steps >= 0 and total_steps > 0, got {self.warmup_steps}, {self.total_steps}")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.min_lr
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = (step - self.warmup_steps) / decay_steps  # 0 -> 1
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)
