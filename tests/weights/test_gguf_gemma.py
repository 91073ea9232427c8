"""Gemma 2 and Gemma 3 GGUF files, written here as llama.cpp's convert_hf_to_gguf.py writes them
(its documented rules: tensor names, every *norm.weight stored as 1 + w, lm_head dropped since
the embeddings are tied, the metadata keys it writes and the ones it leaves to llama.cpp's
defaults), loaded by our GGUF loader and compared with transformers on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

transformers = pytest.importorskip("transformers")

from gguf_writing import dequantized, encode, write_gguf  # noqa: E402

from chatapp.weights.build import build_model  # noqa: E402
from chatapp.weights.gguf_loader import load_gguf  # noqa: E402

VOCAB = 64
LAYER_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
               "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
               "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
               "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down"}


def _reference(family: str):
    T = transformers
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32, max_position_embeddings=64, sliding_window=5,
                  rms_norm_eps=1e-6, query_pre_attn_scalar=32)  # = head_dim, what llama.cpp assumes
    if family == "gemma2":
        config = T.Gemma2Config(**common, num_hidden_layers=4, attn_logit_softcapping=3.0,
                                final_logit_softcapping=4.0)
    else:  # llama.cpp's fixed Gemma 3 layout: every 6th layer global, local RoPE base 10000
        config = T.Gemma3TextConfig(**common, num_hidden_layers=6, final_logit_softcapping=4.0, rope_parameters={
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}})
    torch.manual_seed(0)
    model = T.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model.eval()


def _convert(model, family: str, path, qtype=Q.F32):
    cfg = model.config
    rng = np.random.default_rng(0)
    tensors = {}
    for name, value in model.state_dict().items():
        array = value.detach().numpy().astype(np.float32)
        if name == "lm_head.weight":
            continue  # tied; convert_hf_to_gguf.py skips it
        if name.endswith("norm.weight"):
            array = array + 1  # Gemma's norms as llama.cpp multiplies them
        if name == "model.embed_tokens.weight":
            gguf = "token_embd.weight"
        elif name == "model.norm.weight":
            gguf = "output_norm.weight"
        else:
            parts = name.split(".")
            gguf = f"blk.{parts[2]}.{LAYER_NAMES['.'.join(parts[3:-1])]}.{parts[-1]}"
        quantize = qtype != Q.F32 and array.ndim == 2
        tensors[gguf] = (encode(array, qtype, rng), qtype) if quantize else (array, Q.F32)
    meta = {f"{family}.context_length": cfg.max_position_embeddings, f"{family}.embedding_length": cfg.hidden_size,
            f"{family}.block_count": cfg.num_hidden_layers, f"{family}.feed_forward_length": cfg.intermediate_size,
            f"{family}.attention.head_count": cfg.num_attention_heads,
            f"{family}.attention.head_count_kv": cfg.num_key_value_heads,
            f"{family}.attention.layer_norm_rms_epsilon": cfg.rms_norm_eps,
            f"{family}.attention.key_length": cfg.head_dim, f"{family}.attention.value_length": cfg.head_dim,
            f"{family}.attention.sliding_window": cfg.sliding_window,
            f"{family}.final_logit_softcapping": cfg.final_logit_softcapping}
    if family == "gemma2":
        meta[f"{family}.attn_logit_softcapping"] = cfg.attn_logit_softcapping
    else:
        meta.update({f"{family}.rope.freq_base": 1_000_000.0, f"{family}.rope.scaling.type": "linear",
                     f"{family}.rope.scaling.factor": 2.0})
    write_gguf(path, tensors, meta, arch=family)
    return tensors


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_converted_gemma_matches_transformers(tmp_path, family):
    ref = _reference(family)
    path = tmp_path / f"{family}.gguf"
    _convert(ref, family, path)
    config, state = load_gguf(path)
    assert config.arch == family and config.tie_embeddings and config.norm_unit_offset
    hf_norm = ref.state_dict()["model.layers.0.post_feedforward_layernorm.weight"]
    assert torch.allclose(state["layers.0.mlp_post_norm.weight"], hf_norm, atol=1e-6)  # the 1 taken off
    assert config.layer_types == tuple(ref.config.layer_types)
    ours = build_model(config, state)
    tokens = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref(tokens).logits
        assert (ours(tokens) - expected).abs().max().item() <= 1e-4
        ours.setup_cache(batch_size=2, max_seq_len=32, window_slack=2)  # window-only cache on sliding layers
        steps = [ours(tokens[:, :9], torch.arange(9))]
        steps += [ours(tokens[:, p:p + 1], torch.tensor([p])) for p in range(9, 17)]
        assert (torch.cat(steps, dim=1) - expected).abs().max().item() <= 1e-4


def test_quantized_gemma_loads_the_stored_values(tmp_path):
    ref = _reference("gemma2")
    path = tmp_path / "q8.gguf"
    stored = _convert(ref, "gemma2", path, qtype=Q.Q8_0)
    _, state = load_gguf(path)
    array, qtype = stored["blk.1.ffn_gate.weight"]
    assert np.array_equal(state["layers.1.mlp.gate_proj.weight"].numpy(), dequantized(array, qtype))
    assert np.allclose(state["layers.1.attn_norm.weight"].numpy(), stored["blk.1.attn_norm.weight"][0] - 1)


def test_gemma_gguf_defaults_follow_llama_cpp(tmp_path):
    """Keys the converter leaves out take llama.cpp's values; a per-layer pattern array is read."""
    ref = _reference("gemma3")
    path = tmp_path / "g3.gguf"
    tensors = _convert(ref, "gemma3", path)
    config, _ = load_gguf(path)
    assert (config.local_rope_theta, config.rope_theta, config.rope_scaling.factor) == (10000.0, 1e6, 2.0)
    assert config.layer_types.count("full_attention") == 1 and config.layer_types[5] == "full_attention"
    assert config.attn_scale == pytest.approx(32 ** -0.5) and config.attn_softcap is None
    meta = {"gemma3.context_length": 64, "gemma3.embedding_length": 64, "gemma3.block_count": 6,
            "gemma3.feed_forward_length": 96, "gemma3.attention.head_count": 4,
            "gemma3.attention.head_count_kv": 2, "gemma3.attention.key_length": 32,
            "gemma3.attention.value_length": 32}
    write_gguf(tmp_path / "nowindow.gguf", tensors, meta, arch="gemma3")
    config, _ = load_gguf(tmp_path / "nowindow.gguf")
    assert config.sliding_window is None and not any(config.is_sliding(i) for i in range(6))
    assert config.final_softcap is None
