"""Phi-3 / Phi-3.5 / Phi-4-mini against transformers on tiny random models built here.

Binding cases: LongRoPE past its original length (long factors) and within it (short factors),
partial rotary (Phi-4-mini's 0.75), a sliding window shorter than the prompt (Phi-3-mini-4k),
tied embeddings; q/k/v and gate/up are fused in the saved files and split by our loader.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.errors import CorruptFileError, UnsupportedArchitectureError  # noqa: E402
from chatapp.weights.hf_loader import load_hf_folder  # noqa: E402
from chatapp.weights.phi3 import phi3_config  # noqa: E402
from tests.helpers.parity_checks import (TOLERANCE, greedy_pair, max_cached_decode_error,  # noqa: E402
                                         max_logit_error, reference_pair)

VOCAB = 97
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=3,
              num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _longrope(pairs: int, **extra) -> dict:
    return {"type": "longrope", "short_factor": [1.0 + 0.25 * i for i in range(pairs)],
            "long_factor": [1.5 + 1.5 * i for i in range(pairs)], **extra}


def _configs():
    P = transformers.Phi3Config
    return {
        # prompts of 20+ tokens run past the original 16 positions: long factors throughout
        "longrope-past-original": (P(**COMMON, max_position_embeddings=128, original_max_position_embeddings=16,
                                     rope_scaling=_longrope(8)), 20),
        # within the original 64 positions: short factors, attention factor sqrt(1 + ln 4 / ln 64)
        "longrope-within-original": (P(**COMMON, max_position_embeddings=256, original_max_position_embeddings=64,
                                       rope_scaling=_longrope(8)), 7),
        # Phi-4-mini's shape: 3/4 of each head rotated (12 of 16: 6 factors), tied embeddings
        "phi4-mini-partial-rotary": (P(**COMMON, max_position_embeddings=128, original_max_position_embeddings=16,
                                       partial_rotary_factor=0.75, tie_word_embeddings=True,
                                       rope_scaling=_longrope(6)), 20),
        # Phi-3-mini-4k's shape: no scaling, a sliding window (8) shorter than the prompts
        "sliding-window": (P(**COMMON, max_position_embeddings=64, sliding_window=8), 12),
    }


CASES = list(_configs())


@pytest.fixture(scope="module", params=CASES)
def case(request, tmp_path_factory):
    config, prompt_len = _configs()[request.param]
    ref, ours, cfg = reference_pair(config, CASES.index(request.param), tmp_path_factory.mktemp(request.param))
    return request.param, ref, ours, cfg, prompt_len


def test_config_read_from_the_saved_folder(case):
    name, _, ours, cfg, _ = case
    assert cfg.arch == "phi3"
    if name.startswith("longrope") or name.startswith("phi4"):
        assert cfg.rope_scaling.kind == "longrope"
    if name == "phi4-mini-partial-rotary":
        assert (cfg.rotary_dim, cfg.head_dim, cfg.tie_embeddings) == (12, 16, True)
    if name == "sliding-window":
        assert cfg.sliding_window == 8 and cfg.rope_scaling is None
    # the fused files became separate projections of our decoder
    assert ours.layers[0].attn.k_proj.weight.shape == (32, 64)
    assert ours.layers[0].mlp.gate_proj.weight.shape == (112, 64)


def test_logits_match_reference(case):
    _, ref, ours, _, _ = case
    assert max_logit_error(ref, ours, VOCAB) <= TOLERANCE


def test_cached_decode_matches_a_full_pass(case):
    _, ref, ours, _, _ = case
    assert max_cached_decode_error(ref, ours, VOCAB) <= TOLERANCE


def test_greedy_continuation_is_token_identical(case):
    _, ref, ours, _, prompt_len = case
    expected, got = greedy_pair(ref, ours, VOCAB, prompt_len=prompt_len)
    assert got == expected


@pytest.mark.parametrize("case", ["longrope-past-original", "phi4-mini-partial-rotary"], indirect=True)
@torch.no_grad()
def test_long_and_short_factors_really_differ(case):
    """Past the original length the same positions get other frequencies: the choice matters
    (the cases whose prompts cross the original length)."""
    _name, _, ours, _, _ = case
    tokens = torch.randint(0, VOCAB, (1, 21), generator=torch.Generator().manual_seed(5))
    long_pass = ours(tokens)[:, :16]  # 21 > 16 positions: long factors
    short_pass = ours(tokens[:, :16])  # 16 positions: short factors
    assert (long_pass - short_pass).abs().max().item() > 10 * TOLERANCE


def _hf(**fields) -> dict:
    base = dict(model_type="phi3", vocab_size=32, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=4096)
    return {**base, **fields}


def test_older_su_layout_reads_as_longrope():
    cfg = phi3_config(_hf(max_position_embeddings=131072, original_max_position_embeddings=4096, rope_theta=500.0,
                          rope_scaling={"type": "su", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8}))
    scaling = cfg.rope_scaling
    assert (scaling.kind, scaling.factor, scaling.original_max_position_embeddings) == ("longrope", 32.0, 4096)
    assert cfg.rope_theta == 500.0


@pytest.mark.parametrize("kind", ["yarn", "dynamic", "linear"])
def test_other_rope_scaling_names_phi3_and_the_type(kind):
    with pytest.raises(ValueError, match=f"Phi-3 RoPE scaling '{kind}' is not supported"):
        phi3_config(_hf(rope_scaling={"type": kind, "factor": 2.0}))


def test_longrope_factor_lists_must_fit_the_rotary_dimension():
    with pytest.raises(ValueError, match="needs 8"):
        phi3_config(_hf(original_max_position_embeddings=1024,
                        rope_scaling={"type": "longrope", "short_factor": [1.0] * 6, "long_factor": [1.0] * 6}))


def test_unsupported_scaling_in_a_folder_is_one_error_naming_the_file(tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps(_hf(rope_scaling={"type": "yarn", "factor": 4.0})))
    with pytest.raises(UnsupportedArchitectureError, match="config.json.*Phi-3 RoPE scaling 'yarn'"):
        load_hf_folder(tmp_path)


def test_a_fused_tensor_of_the_wrong_size_is_a_corrupt_file(tmp_path):
    import json

    from safetensors.torch import save_file

    from chatapp.weights.phi3 import PHI3_NAMES  # noqa: F401 (the names written below)

    hf = _hf(num_hidden_layers=1)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    tensors = {"model.embed_tokens.weight": torch.zeros(32, 64), "model.norm.weight": torch.ones(64),
               "lm_head.weight": torch.zeros(32, 64),
               "model.layers.0.input_layernorm.weight": torch.ones(64),
               "model.layers.0.post_attention_layernorm.weight": torch.ones(64),
               "model.layers.0.self_attn.qkv_proj.weight": torch.zeros(150, 64),  # needs 192 rows
               "model.layers.0.self_attn.o_proj.weight": torch.zeros(64, 64),
               "model.layers.0.mlp.gate_up_proj.weight": torch.zeros(192, 64),
               "model.layers.0.mlp.down_proj.weight": torch.zeros(64, 96)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(CorruptFileError, match="qkv.*expected first dimension 192"):
        load_hf_folder(tmp_path)
