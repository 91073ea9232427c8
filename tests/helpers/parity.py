"""The three parity checks every family's test runs against transformers (float32):
logits of a full pass, cached decode (prefill then one token at a time), greedy generate."""

from __future__ import annotations

import torch

from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder


def reference_and_ours(config, folder, seed: int = 0, std: float = 0.15):
    """A random transformers model of `config` saved to `folder`, and ours loaded from it."""
    import transformers

    torch.manual_seed(seed)
    ref = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():  # wider than the init, so a misplaced weight changes the argmax
        for p in ref.parameters():
            p.normal_(0.0, std)
    ref.eval()
    ref.save_pretrained(folder)
    cfg, state = load_hf_folder(folder)
    return ref, build_model(cfg, state)


@torch.no_grad()
def max_logit_error(ref, ours, vocab: int, batch: int = 3, seq: int = 21, seed: int = 1) -> float:
    tokens = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))
    expected = ref(tokens).logits
    got = ours(tokens)
    assert got.shape == expected.shape
    return (got - expected).abs().max().item()


@torch.no_grad()
def max_cached_decode_error(ref, ours, vocab: int, seq: int = 24, prefill: int = 10, seed: int = 2) -> float:
    tokens = torch.randint(0, vocab, (2, seq), generator=torch.Generator().manual_seed(seed))
    expected = ref(tokens).logits
    ours.setup_cache(batch_size=2, max_seq_len=seq + 8)
    try:
        steps = [ours(tokens[:, :prefill], torch.arange(prefill))]
        for pos in range(prefill, seq):
            steps.append(ours(tokens[:, pos:pos + 1], torch.tensor([pos])))
    finally:
        ours.clear_cache()
    return (torch.cat(steps, dim=1) - expected).abs().max().item()


@torch.no_grad()
def greedy_pair(ref, ours, vocab: int, prompt_len: int = 7, new: int = 20, seed: int = 3):
    """(transformers' greedy generate, ours) continuations of one random prompt."""
    prompt = torch.randint(0, vocab, (1, prompt_len), generator=torch.Generator().manual_seed(seed))
    ref.generation_config.eos_token_id = None
    ref.generation_config.pad_token_id = 0
    expected = ref.generate(prompt, max_new_tokens=new, do_sample=False)[0, prompt_len:].tolist()
    ours.setup_cache(batch_size=1, max_seq_len=prompt_len + new + 1)
    try:
        logits = ours(prompt, torch.arange(prompt_len))
        got = []
        for pos in range(prompt_len, prompt_len + new):
            token = int(logits[0, -1].argmax())
            got.append(token)
            logits = ours(torch.tensor([[token]]), torch.tensor([pos]))
    finally:
        ours.clear_cache()
    return expected, got
