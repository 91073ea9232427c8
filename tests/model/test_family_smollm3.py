"""SmolLM3 against transformers on tiny random models built here: no RoPE on every 4th layer
(the default `no_rope_layers`) or on the layers a config lists, GQA, tied embeddings."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.errors import CorruptFileError, UnsupportedArchitectureError  # noqa: E402
from chatapp.weights.hf_loader import load_hf_folder, read_hf_config  # noqa: E402
from tests.helpers.parity_checks import (TOLERANCE, greedy_pair, max_cached_decode_error,  # noqa: E402
                                         max_logit_error, reference_pair)

VOCAB = 97
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2,
              rope_theta=1000.0)


def _configs():
    S = transformers.SmolLM3Config
    return {
        "every-4th-layer": (S(**COMMON, num_hidden_layers=8), [3, 7]),
        "listed-layers": (S(**COMMON, num_hidden_layers=3, no_rope_layers=[0, 1, 0], tie_word_embeddings=False),
                          [0, 2]),
    }


CASES = list(_configs())


@pytest.fixture(scope="module", params=CASES)
def case(request, tmp_path_factory):
    config, no_rope = _configs()[request.param]
    ref, ours, cfg = reference_pair(config, 10 + CASES.index(request.param), tmp_path_factory.mktemp(request.param))
    return ref, ours, cfg, no_rope


def test_layers_without_rope_are_read(case):
    _, ours, cfg, no_rope = case
    assert cfg.arch == "smollm3" and cfg.no_rope_layers == no_rope
    assert [i for i, block in enumerate(ours.layers) if not block.attn.use_rope] == no_rope


def test_logits_match_reference(case):
    ref, ours, _, _ = case
    assert max_logit_error(ref, ours, VOCAB) <= TOLERANCE


def test_cached_decode_matches_a_full_pass(case):
    ref, ours, _, _ = case
    assert max_cached_decode_error(ref, ours, VOCAB) <= TOLERANCE


def test_greedy_continuation_is_token_identical(case):
    ref, ours, _, _ = case
    expected, got = greedy_pair(ref, ours, VOCAB)
    assert got == expected


@torch.no_grad()
def test_the_layers_without_rope_matter(case):
    """Turning RoPE back on in those layers changes the logits: the flag binds."""
    _, ours, _, no_rope = case
    tokens = torch.randint(0, VOCAB, (1, 16), generator=torch.Generator().manual_seed(4))
    before = ours(tokens)
    for i in no_rope:
        ours.layers[i].attn.use_rope = True
    try:
        after = ours(tokens)
    finally:
        for i in no_rope:
            ours.layers[i].attn.use_rope = False
    assert (after - before).abs().max().item() > 10 * TOLERANCE


def _write(folder, **fields):
    hf = dict(model_type="smollm3", vocab_size=32, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
              num_attention_heads=4, max_position_embeddings=256, **fields)
    (folder / "config.json").write_text(json.dumps(hf))
    return folder


def test_sliding_window_layers_are_refused_naming_smollm3(tmp_path):
    _write(tmp_path, use_sliding_window=True, sliding_window=64,
           layer_types=["full_attention", "full_attention", "full_attention", "sliding_attention"])
    with pytest.raises(UnsupportedArchitectureError, match="SmolLM3 sliding-window"):
        load_hf_folder(tmp_path)


def test_a_malformed_no_rope_list_names_the_field(tmp_path):
    _write(tmp_path, no_rope_layers=[1, 1, 0])  # one flag per layer: 4 needed
    with pytest.raises(CorruptFileError, match="config.json: SmolLM3 no_rope_layers must hold one 0 or 1 per layer"):
        read_hf_config(tmp_path)
