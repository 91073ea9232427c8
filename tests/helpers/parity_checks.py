"""Parity checks of our Transformer against transformers on one tiny random model (tests only).

`reference_pair` builds the reference from a transformers config, widens its random weights,
saves it with save_pretrained and loads it with our Hugging Face folder loader; the `check_*`
functions assert float32 logits, cached decode and greedy continuations agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder

TOLERANCE = 1e-4


def reference_pair(config, seed: int, folder: Path, std: float = 0.15):
    """(reference transformers model, our model, our ModelConfig) holding the same random weights."""
    import transformers

    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    ref = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():  # the default init is near zero: widen it so logits and argmaxes differ
        for p in ref.parameters():
            p.normal_(0.0, std)
    ref.eval()
    ref.save_pretrained(folder)
    ours_config, state = load_hf_folder(folder)
    return ref, build_model(ours_config, state), ours_config


@torch.no_grad()
def max_logit_error(ref, ours, vocab: int, length: int = 21, batch: int = 3, seed: int = 1) -> float:
    tokens = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))
    expected = ref(tokens).logits
    got = ours(tokens)
    assert got.shape == expected.shape
    return (got - expected).abs().max().item()


@torch.no_grad()
def max_cached_decode_error(ref, ours, vocab: int, length: int = 24, prefill: int = 10,
                            cache: int = 64, seed: int = 2, chunks: Optional[Sequence[int]] = None,
                            on_setup: Optional[Callable[[], None]] = None, **cache_options) -> float:
    """Prefill `prefill` tokens, then one token at a time (or `chunks` tokens at a time, up to
    `length`), against one full reference pass. cache_options go to setup_cache; on_setup runs
    once the cache is set up (to inspect it)."""
    tokens = torch.randint(0, vocab, (2, length), generator=torch.Generator().manual_seed(seed))
    expected = ref(tokens).logits
    chunks = [1] * (length - prefill) if chunks is None else list(chunks)
    assert prefill + sum(chunks) == length, "the chunks must cover the tokens after the prefill"
    ours.setup_cache(batch_size=2, max_seq_len=cache, **cache_options)
    try:
        if on_setup is not None:
            on_setup()
        steps = [ours(tokens[:, :prefill], torch.arange(prefill))]
        pos = prefill
        for size in chunks:
            steps.append(ours(tokens[:, pos:pos + size], torch.arange(pos, pos + size)))
            pos += size
    finally:
        ours.clear_cache()
    return (torch.cat(steps, dim=1) - expected).abs().max().item()


@torch.no_grad()
def greedy_pair(ref, ours, vocab: int, prompt_len: int = 7, new: int = 20, cache: int = 64,
                seed: int = 3, **cache_options) -> tuple[list[int], list[int]]:
    """(transformers' generate, ours) greedy continuations of one random prompt; `cache_options`
    go to our setup_cache (e.g. a sliding window's `window_slack`)."""
    prompt = torch.randint(0, vocab, (1, prompt_len), generator=torch.Generator().manual_seed(seed))
    ref.generation_config.eos_token_id = None
    ref.generation_config.pad_token_id = 0
    expected = ref.generate(prompt, max_new_tokens=new, do_sample=False)[0, prompt_len:].tolist()
    ours.setup_cache(batch_size=1, max_seq_len=cache, **cache_options)
    try:
        logits = ours(prompt, torch.arange(prompt_len))
        got = []
        for pos in range(prompt_len, prompt_len + new):
            token = int(logits[0, -1].argmax())
            got.append(token)
            logits = ours(torch.tensor([[token]]), torch.tensor([pos]))
    finally:
        ours.clear_cache()
    assert len(expected) == new
    return expected, got
