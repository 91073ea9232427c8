"""Gemma 2 and Gemma 3 (text) against transformers on tiny random models built here.

Each binding case is made to bind: the sliding window (6) is shorter than every prompt, the
soft-caps are small enough that tanh flattens scores and logits (checked: removing them changes
the output), Gemma 3's local and global RoPE bases differ and its global layers are scaled.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.model.transformer import Transformer  # noqa: E402
from chatapp.model.window_cache import WindowCacheError, WindowKVCache  # noqa: E402
from chatapp.weights.build import build_model  # noqa: E402
from chatapp.weights.hf_loader import load_hf_folder, read_hf_config  # noqa: E402
from tests.helpers.parity_checks import greedy_pair, max_cached_decode_error  # noqa: E402

VOCAB = 97
WINDOW = 6
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=4,
              num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=128,
              sliding_window=WINDOW, query_pre_attn_scalar=24, pad_token_id=0)
GEMMA3_ROPE = {"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 50000.0},
               "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}}


def _configs():
    T = transformers
    return {
        "gemma2": T.Gemma2Config(**COMMON, attn_logit_softcapping=2.0, final_logit_softcapping=3.0),
        "gemma2-untied": T.Gemma2Config(**{**COMMON, "num_key_value_heads": 1}, tie_word_embeddings=False,
                                        attn_logit_softcapping=1.0, final_logit_softcapping=None,
                                        layer_types=["sliding_attention", "sliding_attention",
                                                     "full_attention", "sliding_attention"]),
        "gemma3": T.Gemma3TextConfig(**COMMON, sliding_window_pattern=2, final_logit_softcapping=3.0,
                                     rope_parameters=GEMMA3_ROPE),
    }


FAMILIES = list(_configs())


def _reference(name: str, folder):
    config = _configs()[name]
    torch.manual_seed(FAMILIES.index(name))
    ref = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():  # norms included: Gemma's (1 + w) must see w away from 0
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.eval()
    ref.save_pretrained(folder)
    return ref


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    ref = _reference(request.param, folder)
    cfg, state = load_hf_folder(folder)
    return ref, build_model(cfg, state), folder


def _tokens(shape, seed):
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_logits_match_reference(pair):
    ref, ours, _ = pair
    tokens = _tokens((3, 21), 1)
    expected = ref(tokens).logits
    got = ours(tokens)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4


@torch.no_grad()
@pytest.mark.parametrize("window_cache", [True, False], ids=["window-cache", "full-cache"])
def test_cached_decode_matches_full_pass(pair, window_cache):
    ref, ours, _ = pair

    def check_rings():
        rings = [b.attn.kv_cache for b in ours.layers if isinstance(b.attn.kv_cache, WindowKVCache)]
        assert len(rings) == (sum(b.sliding for b in ours.layers) if window_cache else 0)

    # a prefill longer than the ring (9 slots), single steps, then chunks of 2 (they fit the slack)
    error = max_cached_decode_error(ref, ours, VOCAB, length=30, prefill=12, cache=64, seed=2,
                                    chunks=[1] * 14 + [2, 2], on_setup=check_rings,
                                    window_cache=window_cache, window_slack=3)
    assert error <= 1e-4


@torch.no_grad()
def test_greedy_continuation_is_token_identical(pair):
    ref, ours, _ = pair
    # the prompt is longer than the window
    expected, got = greedy_pair(ref, ours, VOCAB, prompt_len=9, new=20, cache=64, seed=3, window_slack=2)
    assert got == expected


@torch.no_grad()
def test_binding_cases_bind(pair):
    """The window, the soft-caps and Gemma 3's local RoPE base each change the logits."""
    ref, ours, _ = pair
    tokens = _tokens((1, 21), 4)
    base = ours(tokens)
    config = ours.config
    changes = {}
    saved = dict(vars(config))
    try:
        for field, value in (("sliding_window", 1000), ("attn_softcap", None), ("final_softcap", None),
                             ("local_rope_theta", None)):
            if getattr(config, field) is None:
                continue
            setattr(config, field, value)
            if field == "attn_softcap":
                for b in ours.layers:
                    b.attn.softcap = None
            changes[field] = (ours(tokens) - base).abs().max().item()
            vars(config).update(saved)
            for b in ours.layers:
                b.attn.softcap = config.attn_softcap
    finally:
        vars(config).update(saved)
    assert changes and all(change > 1e-2 for change in changes.values()), changes


@torch.no_grad()
def test_window_cache_goes_back_within_its_slack_and_refuses_further(pair):
    _, ours, _ = pair
    if not any(b.sliding for b in ours.layers):
        pytest.skip("no sliding layers")
    a, b = _tokens((1, 30), 5), _tokens((1, 30), 6)
    mixed = torch.cat((a[:, :20], b[:, 20:]), dim=1)
    expected = ours(mixed)[:, 20:]
    ours.setup_cache(batch_size=1, max_seq_len=64, window_slack=4)
    try:
        ours(a[:, :23], torch.arange(23))  # the ring now holds positions 13..22
        assert ours.can_resume(20) and not ours.can_resume(15)
        got = ours(mixed[:, 20:], torch.arange(20, 30))  # back 3 positions: within the slack
        assert (got - expected).abs().max().item() <= 1e-4
        with pytest.raises(WindowCacheError, match="start again from 0"):
            ours(mixed[:, 12:], torch.arange(12, 30))
    finally:
        ours.clear_cache()


def test_window_cache_holds_only_the_window(pair):
    _, ours, _ = pair
    config = ours.config
    sliding = sum(b.sliding for b in ours.layers)
    per_position = 2 * config.n_kv_heads * config.head_dim * 4
    for window_cache in (True, False):
        ours.setup_cache(batch_size=1, max_seq_len=128, window_cache=window_cache, window_slack=10)
        held = sum(buf.numel() * buf.element_size() for b in ours.layers
                   for name, buf in b.attn.kv_cache.named_buffers() if name in ("k", "v"))
        ours.clear_cache()
        full = config.n_layers * 129 * per_position  # 128 positions and a spare slot (attention.KVCache)
        assert held == (full - sliding * (129 - WINDOW - 10) * per_position if window_cache else full)
    assert config.kv_cache_bytes(128) == full - sliding * (129 - WINDOW - 256 if 128 > WINDOW + 256 else 0)


def test_gemma3_reads_the_flat_rope_layout_as_the_nested_one(tmp_path):
    ref = _reference("gemma3", tmp_path)
    _, nested = read_hf_config(tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    data.pop("rope_parameters")
    data.update(rope_theta=50000.0, rope_local_base_freq=100.0, rope_scaling={"rope_type": "linear", "factor": 4.0})
    path.write_text(json.dumps(data))
    _, flat = read_hf_config(tmp_path)
    assert flat == nested
    assert (flat.rope_theta, flat.local_rope_theta, flat.rope_scaling.factor) == (50000.0, 100.0, 4.0)
    assert flat.local_rope_scaling is None
    cfg, state = load_hf_folder(tmp_path)
    tokens = _tokens((1, 15), 7)
    with torch.no_grad():
        assert (build_model(cfg, state)(tokens) - ref(tokens).logits).abs().max().item() <= 1e-4
    # Both layouts at once, disagreeing: refused, naming the keys.
    data["rope_parameters"] = GEMMA3_ROPE
    data["rope_local_base_freq"] = 10.0
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match="rope_local_base_freq disagree"):
        read_hf_config(tmp_path)


def test_unsupported_gemma_variants_name_family_and_feature(tmp_path):
    from chatapp.errors import UnsupportedArchitectureError

    base = {"vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 112, "num_hidden_layers": 2,
            "num_attention_heads": 4}
    for extra, words in (({"model_type": "gemma3"}, "without a text_config"),
                         ({"model_type": "gemma2", "hidden_activation": "relu"}, "Gemma 2: hidden_activation"),
                         ({"model_type": "gemma3_text", "use_bidirectional_attention": True},
                          "Gemma 3: use_bidirectional_attention"),
                         ({"model_type": "gemma3_text", "rope_parameters": {
                             "full_attention": {"rope_type": "yarn", "factor": 2.0}}}, "Gemma: RoPE scaling type 'yarn'")):
        (tmp_path / "config.json").write_text(json.dumps({**base, **extra}))
        with pytest.raises(UnsupportedArchitectureError, match=words):
            read_hf_config(tmp_path)


def test_memory_estimate_counts_gemma_parameters_and_the_window_cache(pair):
    ref, ours, _ = pair
    assert ours.config.n_params == sum(p.numel() for p in ref.parameters())  # tied embedding once
    config = dataclasses.replace(ours.config, max_seq_len=1024)  # window + slack (262) < 1024
    model = Transformer(config)
    model.setup_cache(batch_size=1)
    allocated = sum(buf.numel() * buf.element_size() for b in model.layers
                    for name, buf in b.attn.kv_cache.named_buffers() if name in ("k", "v"))
    assert config.kv_cache_bytes(1024) == allocated < 2 * config.n_layers * 1024 * config.n_kv_heads * config.head_dim * 4


def test_gemma3_with_a_vision_tower_loads_its_text_model(tmp_path):
    """model_type gemma3 (Gemma3ForConditionalGeneration, the 4B-27B checkpoints): text_config with
    Gemma3TextConfig's defaults, prefixed tensor names, the vision tensors left out."""
    T = transformers
    text = T.Gemma3TextConfig(**COMMON, sliding_window_pattern=2, rope_parameters=GEMMA3_ROPE)
    vision = T.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  image_size=28, patch_size=14)
    config = T.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                            boi_token_index=VOCAB - 3, eoi_token_index=VOCAB - 2, image_token_index=VOCAB - 1)
    torch.manual_seed(5)
    ref = T.Gemma3ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.save_pretrained(tmp_path)
    cfg, state = load_hf_folder(tmp_path)
    assert cfg.arch == "gemma3" and cfg.qk_norm and cfg.local_rope_theta == 100.0
    tokens = _tokens((2, 17), 8) % (VOCAB - 3)  # text only: no image tokens
    with torch.no_grad():
        expected = ref(input_ids=tokens).logits
        assert (build_model(cfg, state)(tokens) - expected).abs().max().item() <= 1e-4
