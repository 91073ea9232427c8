"""Qwen3 (dense) against transformers on tiny random models: per-head q/k RMSNorm before RoPE,
head_dim independent of hidden_size."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.errors import UnsupportedArchitectureError  # noqa: E402
from chatapp.weights.hf_loader import read_hf_config  # noqa: E402

from tests.helpers.parity import greedy_pair, max_cached_decode_error, max_logit_error, reference_and_ours  # noqa: E402

VOCAB = 97


def qwen3_config(**overrides):
    fields = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32,  # 4 * 32 != 48
                  max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=False)
    fields.update(overrides)
    return transformers.Qwen3Config(**fields)


@pytest.fixture(scope="module", params=["untied", "tied-bias"])
def pair(request, tmp_path_factory):
    extra = {} if request.param == "untied" else dict(tie_word_embeddings=True, attention_bias=True)
    ref, ours = reference_and_ours(qwen3_config(**extra), tmp_path_factory.mktemp("qwen3"), seed=7)
    return ref, ours


def test_config_reads_qk_norm_and_separate_head_dim(pair):
    _, ours = pair
    cfg = ours.config
    assert cfg.arch == "qwen3" and cfg.qk_norm and cfg.head_dim == 32 and cfg.dim == 48
    assert ours.layers[0].attn.q_norm.weight.shape == (32,)
    # The norms are loaded, not left at ones: the reference's weights were randomised.
    assert not torch.allclose(ours.layers[0].attn.k_norm.weight, torch.ones(32))


def test_logits_match_reference(pair):
    assert max_logit_error(*pair, VOCAB) <= 1e-4


def test_cached_decode_matches_reference(pair):
    assert max_cached_decode_error(*pair, VOCAB) <= 1e-4


def test_greedy_continuation_is_token_identical(pair):
    expected, got = greedy_pair(*pair, VOCAB)
    assert len(expected) == 20 and got == expected


def test_qk_norm_matters(pair):
    """Without the q/k norms the logits move far beyond the parity tolerance: the parity
    tests above could not pass with the norms missing or misplaced."""
    _, ours = pair
    tokens = torch.arange(12)[None] % VOCAB
    with torch.no_grad():
        before = ours(tokens)
        for block in ours.layers:
            block.attn.qk_norm = False
        try:
            after = ours(tokens)
        finally:
            for block in ours.layers:
                block.attn.qk_norm = True
    assert (before - after).abs().max() > 1e-3


def test_sliding_window_layers_are_refused_naming_the_family(tmp_path):
    config = qwen3_config(use_sliding_window=True, sliding_window=8, max_window_layers=1).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitectureError, match="Qwen3 per-layer sliding-window"):
        read_hf_config(tmp_path)
