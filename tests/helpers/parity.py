"""The three parity checks every family's test runs against transformers (float32), in the
shape the Qwen3 and mixture-of-experts tests call them: see parity_checks.py for the checks."""

from __future__ import annotations

from helpers.parity_checks import greedy_pair as _greedy_pair
from helpers.parity_checks import max_cached_decode_error, max_logit_error, reference_pair

__all__ = ["reference_and_ours", "max_logit_error", "max_cached_decode_error", "greedy_pair"]


def reference_and_ours(config, folder, seed: int = 0, std: float = 0.15):
    """A random transformers model of `config` saved to `folder`, and ours loaded from it."""
    ref, ours, _config = reference_pair(config, seed, folder, std)
    return ref, ours


def greedy_pair(ref, ours, vocab: int, prompt_len: int = 7, new: int = 20, seed: int = 3):
    """(transformers' greedy generate, ours) continuations of one random prompt, with a cache
    just long enough (these tiny models have short contexts)."""
    return _greedy_pair(ref, ours, vocab, prompt_len, new, cache=prompt_len + new + 1, seed=seed)
