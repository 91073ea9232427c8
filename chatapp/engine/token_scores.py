"""What a fine-tune changed, token by token: each token's log-probability under the base model
and under the adapter, over the same tokens (teacher forcing, `logprobs.score_tokens`).

`score_text_ids` scores a token sequence of any length in windows of at most the context
(each window starts a fresh context; the first token of the text has nothing to be predicted
from and is not scored), chunk by chunk so a caller sees progress and can cancel between
chunks. With an adapter loaded, each window is scored twice, adapter off then on, and the
adapter is left on. `perplexity` is exp of the mean negative log-probability.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from ..model.lora import has_lora, set_lora_enabled
from .logprobs import SCORE_CHUNK, TokenText, score_tokens


class ScoringCancelled(Exception):
    """The caller's cancel event was set; nothing partial is returned."""


@dataclass(frozen=True)
class TokenScore:
    index: int  # place among the scored tokens, from 0
    id: int
    token: str  # the token's text on its own
    logprob_base: float  # adapter off (or no adapter)
    logprob_adapter: Optional[float] = None  # adapter on; None without an adapter

    @property
    def difference(self) -> Optional[float]:
        """How much more likely the adapter makes this token, in nats (log p_adapter - log p_base)."""
        return None if self.logprob_adapter is None else self.logprob_adapter - self.logprob_base

    def to_json(self) -> dict:
        """`chatapp eval --per-token`'s line: the adapter's field only with an adapter."""
        line = {"index": self.index, "id": self.id, "token": self.token, "logprob_base": self.logprob_base}
        if self.logprob_adapter is not None:
            line["logprob_adapter"] = self.logprob_adapter
        return line


def perplexity(logprobs: Sequence[float]) -> float:
    """exp(mean surprise); nan for no tokens."""
    if not logprobs:
        return float("nan")
    return math.exp(min(-sum(logprobs) / len(logprobs), 700.0))


Progress = Callable[[int, int], None]  # (tokens scored so far over all passes, total)


@torch.inference_mode()
def score_text_ids(model, ids: Sequence[int], tokenizer=None, *, window: Optional[int] = None,
                   chunk: int = SCORE_CHUNK, progress: Optional[Progress] = None,
                   cancel: Optional[threading.Event] = None) -> list[TokenScore]:
    """TokenScores for ids[1:] (see the module docstring). `window`: tokens per fresh context
    (default: the model's KV cache when it has one, as under an Engine, else its context). A cache
    already there is used and overwritten (an Engine must forget its prefix: `Engine.reset`);
    without one, one is set up for the windows and removed afterwards."""
    ids = [int(i) for i in ids]
    previous_cache = model.cache_len
    window = min(window or previous_cache or model.config.max_seq_len, model.config.max_seq_len)
    if window < 2:
        raise ValueError(f"a scoring window needs at least 2 tokens, got {window}")
    adapter = has_lora(model)
    passes = (False, True) if adapter else (False,)
    text = TokenText(tokenizer) if tokenizer is not None else None
    total, done = max(len(ids) - 1, 0) * len(passes), 0
    scores: list[TokenScore] = []
    try:
        start = 0
        while start < len(ids) - 1:
            piece = ids[start:start + window]
            if model.cache_len < len(piece):
                model.setup_cache(1, len(piece))
            found: dict[bool, list[float]] = {}
            for on in passes:
                if adapter:
                    set_lora_enabled(model, on)
                found[on] = []
                position = 0
                while position < len(piece) - 1:
                    if cancel is not None and cancel.is_set():
                        raise ScoringCancelled("scoring was cancelled")
                    end = min(position + chunk, len(piece) - 1)
                    entries = score_tokens(model, piece[:end + 1], start=position, chunk=chunk)
                    found[on].extend(e.logprob for e in entries)
                    done += end - position
                    position = end
                    if progress is not None:
                        progress(done, total)
            for k, token in enumerate(piece[1:]):
                scores.append(TokenScore(len(scores), token, text(token)[0] if text else "", found[False][k],
                                         found[True][k] if adapter else None))
            start += len(piece) - 1  # the next window starts from this one's last token
    finally:
        if adapter:
            set_lora_enabled(model, True)
        if model.cache_len != previous_cache:
            if previous_cache:
                model.setup_cache(1, previous_cache)
            else:
                model.clear_cache()
    return scores
