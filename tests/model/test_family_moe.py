"""Mixture of experts (Mixtral, Qwen3-MoE) against transformers on tiny random models, whose
experts differ (random weights) and are actually chosen differently token by token."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.model import ModelConfig, Transformer  # noqa: E402
from chatapp.model.moe import MoE, route  # noqa: E402
from tests.helpers.parity import (greedy_pair, max_cached_decode_error, max_logit_error,  # noqa: E402
                                  reference_and_ours)

VOCAB = 97
COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=128, num_experts_per_tok=2)


def _configs():
    T = transformers
    return {
        "mixtral": T.MixtralConfig(**COMMON, intermediate_size=48, num_local_experts=6, rms_norm_eps=1e-5),
        "mixtral-sliding": T.MixtralConfig(**COMMON, intermediate_size=48, num_local_experts=4, sliding_window=6),
        "qwen3-moe": T.Qwen3MoeConfig(**COMMON, intermediate_size=80, moe_intermediate_size=40, num_experts=6,
                                      head_dim=24, norm_topk_prob=False),
        # Normalised top-k, and a dense layer between sparse ones (mlp_only_layers).
        "qwen3-moe-norm-dense": T.Qwen3MoeConfig(**COMMON, intermediate_size=80, moe_intermediate_size=40,
                                                 num_experts=5, head_dim=16, norm_topk_prob=True,
                                                 mlp_only_layers=[1]),
    }


FAMILIES = list(_configs())


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tmp_path_factory):
    return reference_and_ours(_configs()[request.param], tmp_path_factory.mktemp(request.param),
                              seed=FAMILIES.index(request.param))


def test_config_reads_the_experts(pair):
    ref, ours = pair
    cfg, hf = ours.config, ref.config
    if hf.model_type == "mixtral":
        assert cfg.arch == "mixtral" and cfg.n_experts == hf.num_local_experts and cfg.norm_topk_prob
        assert cfg.moe_intermediate_size == hf.intermediate_size and not cfg.qk_norm
    else:
        assert cfg.arch == "qwen3_moe" and cfg.n_experts == hf.num_experts and cfg.qk_norm
        assert cfg.moe_intermediate_size == hf.moe_intermediate_size
        assert cfg.norm_topk_prob == hf.norm_topk_prob
        assert cfg.dense_layers == tuple(hf.mlp_only_layers)
    assert cfg.n_experts_per_tok == 2
    for i, block in enumerate(ours.layers):
        assert isinstance(block.mlp, MoE) == (i not in cfg.dense_layers)


def test_experts_differ_and_tokens_choose_different_ones(pair):
    _, ours = pair
    moe = next(b.mlp for b in ours.layers if isinstance(b.mlp, MoE))
    assert not torch.allclose(moe.gate_exps[0], moe.gate_exps[1])
    x = torch.randn(40, ours.config.dim, generator=torch.Generator().manual_seed(0))
    _, experts = route(moe.router(x), moe.top_k, moe.normalize)
    assert len(torch.unique(experts)) == ours.config.n_experts  # every expert is used by some token
    assert len({tuple(sorted(row)) for row in experts.tolist()}) > 2  # and tokens pick different pairs


def test_logits_match_reference(pair):
    assert max_logit_error(*pair, VOCAB) <= 1e-4


def test_cached_decode_matches_reference(pair):
    assert max_cached_decode_error(*pair, VOCAB) <= 1e-4


def test_greedy_continuation_is_token_identical(pair):
    expected, got = greedy_pair(*pair, VOCAB)
    assert len(expected) == 20 and got == expected


def tiny_moe(normalize: bool = True, n_experts: int = 8) -> MoE:
    config = ModelConfig(arch="mixtral", vocab_size=16, dim=32, n_layers=1, n_heads=4, intermediate_size=24,
                         max_seq_len=16, n_experts=n_experts, n_experts_per_tok=2, norm_topk_prob=normalize)
    torch.manual_seed(0)
    moe = MoE(config)
    with torch.no_grad():
        for p in moe.parameters():
            p.normal_(0.0, 0.3)
    return moe.eval()


@torch.no_grad()
def test_decode_touches_only_the_chosen_experts():
    """One token runs only its top-k experts: poisoning every other expert's weights with NaN
    leaves its output unchanged (and finite)."""
    moe = tiny_moe()
    x = torch.randn(1, 1, 32, generator=torch.Generator().manual_seed(1))
    expected = moe(x)
    _, chosen = route(moe.router(x.reshape(1, 32)), 2, True)
    others = [e for e in range(8) if e not in chosen[0].tolist()]
    assert len(others) == 6
    for weight in (moe.gate_exps, moe.up_exps, moe.down_exps):
        weight[others] = float("nan")
    got = moe(x)
    assert torch.isfinite(got).all() and torch.equal(got, expected)


def test_routing_normalisation():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    probs = torch.softmax(logits, dim=-1)[0]
    weights, experts = route(logits, 2, normalize=False)
    assert experts.tolist() == [[0, 1]] and torch.allclose(weights[0], probs[:2])
    weights, _ = route(logits, 2, normalize=True)
    assert torch.allclose(weights[0], probs[:2] / probs[:2].sum()) and torch.allclose(weights.sum(), torch.tensor(1.0))


@torch.no_grad()
def test_normalisation_changes_the_output():
    x = torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(2))
    assert (tiny_moe(True)(x) - tiny_moe(False)(x)).abs().max() > 1e-3


def test_memory_counts_every_expert_and_active_params_only_top_k():
    config = ModelConfig(arch="qwen3_moe", vocab_size=100, dim=32, n_layers=2, n_heads=4, head_dim=8,
                         intermediate_size=64, moe_intermediate_size=16, max_seq_len=16, qk_norm=True,
                         n_experts=8, n_experts_per_tok=2)
    with torch.device("meta"):
        model = Transformer(config)
    assert config.n_params == sum(p.numel() for p in model.parameters())
    per_expert = 3 * 32 * 16
    assert config.n_params - config.n_active_params == 2 * (8 - 2) * per_expert
