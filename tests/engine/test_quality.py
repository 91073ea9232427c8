"""engine/quality.py: the perplexity, greedy continuations and agreement the quality guard uses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from chatapp.engine.quality import agreement, greedy_ids, text_perplexity
from chatapp.model import ModelConfig, Transformer


class ByteTokens:
    """Each character's code point modulo the tiny vocabulary: enough to feed a model."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) % 64 for c in text]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = ModelConfig(arch="llama", vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                      intermediate_size=64, max_seq_len=64, tie_embeddings=True)
    m = Transformer(cfg)
    with torch.no_grad():  # wider weights than the init, so the argmax is not a tie anywhere
        for p in m.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return m.eval()


def test_perplexity_is_exp_of_the_mean_next_token_loss(model):
    text = "the quick brown fox"
    ids = torch.tensor([ByteTokens().encode(text)])
    with torch.no_grad():
        want = math.exp(F.cross_entropy(model(ids)[0, :-1], ids[0, 1:]).item())
    assert text_perplexity(model, ByteTokens(), text) == pytest.approx(want, rel=1e-6)
    assert text_perplexity(model, ByteTokens(), text + " jumps", max_tokens=len(text)) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="at least two tokens"):
        text_perplexity(model, ByteTokens(), "a")


def test_greedy_ids_follow_the_argmax_of_a_full_forward(model):
    prompt = "hello"
    got = greedy_ids(model, ByteTokens(), prompt, 6)
    ids = ByteTokens().encode(prompt)
    want = []
    with torch.no_grad():
        for _ in range(6):  # no cache: the whole sequence each time
            logits = model(torch.tensor([ids + want]))
            want.append(int(logits[0, -1].argmax()))
    assert got == want
    assert greedy_ids(model, ByteTokens(), prompt, 6) == got  # the cache was freed and set up again


def test_agreement_counts_tokens_before_the_first_difference():
    assert agreement([1, 2, 3, 4], [1, 2, 9, 4]) == 2
    assert agreement([1, 2, 3], [1, 2, 3]) == 3
    assert agreement([5], [6, 7]) == 0
    assert agreement([1, 2], [1, 2, 3]) == 2
