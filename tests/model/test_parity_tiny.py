"""Our Transformer against Hugging Face transformers on tiny random models of each family.

Each model is built here from a config, saved with save_pretrained (safetensors), loaded by
our Hugging Face folder loader, and compared: float32 logits, cached decode, greedy text.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.weights.build import build_model  # noqa: E402
from chatapp.weights.hf_loader import load_hf_folder  # noqa: E402
from tests.helpers.parity_checks import greedy_pair, max_cached_decode_error  # noqa: E402

VOCAB = 97
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=3,
              num_attention_heads=4, max_position_embeddings=128)


def _configs():
    T = transformers
    return {
        "llama-gqa": T.LlamaConfig(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-5,
                                   rope_theta=5000.0),
        "llama-tied-llama3-rope-bias": T.LlamaConfig(
            **COMMON, num_key_value_heads=1, tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
            head_dim=32,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
        "llama-linear-rope": T.LlamaConfig(**COMMON, rope_scaling={"rope_type": "linear", "factor": 2.0}),
        "qwen2": T.Qwen2Config(**COMMON, num_key_value_heads=2, tie_word_embeddings=True),
        "mistral-sliding": T.MistralConfig(**COMMON, num_key_value_heads=2, sliding_window=8),
        "gpt2": T.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=128),
    }


FAMILIES = list(_configs())


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tmp_path_factory):
    """(reference HF model, our model) holding the same random weights."""
    config = _configs()[request.param]
    config._attn_implementation = "eager"
    torch.manual_seed(FAMILIES.index(request.param))
    ref = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    # Random init is near zero; widen weights so logits (and argmaxes) differ meaningfully.
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.eval()
    folder = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(folder)
    cfg, state = load_hf_folder(folder)
    return ref, build_model(cfg, state)


@torch.no_grad()
def test_logits_match_reference(pair):
    ref, ours = pair
    tokens = torch.randint(0, VOCAB, (3, 21), generator=torch.Generator().manual_seed(1))
    expected = ref(tokens).logits
    got = ours(tokens)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4


def test_cached_decode_matches_reference(pair):
    """Prefill 10 tokens, then one at a time, against one full reference pass."""
    ref, ours = pair
    assert max_cached_decode_error(ref, ours, VOCAB, length=24, prefill=10, cache=64, seed=2) <= 1e-4


@torch.no_grad()
def test_greedy_continuation_is_token_identical(pair):
    ref, ours = pair
    expected, got = greedy_pair(ref, ours, VOCAB, prompt_len=7, new=20, cache=64, seed=3)
    assert got == expected
