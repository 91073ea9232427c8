"""The quality guard of a weights option, as one set of functions: perplexity on a fixed text
and greedy continuations, and how far two continuations agree. Used by
benchmarks/quantized.py and tests/model/test_quant_default.py alike, so the README's numbers
and the tests' bounds measure the same thing.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def text_perplexity(model, tokenizer, text: str, max_tokens: Optional[int] = None) -> float:
    """exp(mean next-token cross-entropy) of `text` (its first `max_tokens` tokens), one forward."""
    ids = tokenizer.encode(text)[:max_tokens]
    if len(ids) < 2:
        raise ValueError("perplexity needs a text of at least two tokens")
    tokens = torch.tensor([ids])  # (1, T)
    with torch.no_grad():
        logits = model(tokens)  # (1, T, vocab)
    loss = F.cross_entropy(logits[0, :-1].float(), tokens[0, 1:])
    return math.exp(loss.item())


def greedy_ids(model, tokenizer, prompt: str, n: int) -> list[int]:
    """The `n` most probable next tokens, one at a time (the model's KV cache, freed after)."""
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("the prompt is empty")
    model.setup_cache(1, len(ids) + n)
    out: list[int] = []
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids]), torch.arange(len(ids)), last_only=True)  # (1, 1, vocab)
            for i in range(n):
                out.append(int(logits[0, -1].argmax()))
                logits = model(torch.tensor([[out[-1]]]), torch.tensor([len(ids) + i]))
    finally:
        model.clear_cache()
    return out


def agreement(got: Sequence[int], want: Sequence[int]) -> int:
    """Tokens equal before the first difference (a greedy run follows its own first change)."""
    return next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
