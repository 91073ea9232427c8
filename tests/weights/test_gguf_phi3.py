"""Phi-3 / Phi-4-mini and SmolLM3 GGUF round trips: a tiny transformers model converted here the
way llama.cpp's convert_hf_to_gguf.py does (written from its documented rules, independently of
chatapp's loader), written with gguf.GGUFWriter, loaded by our loader, logits compared.

llama.cpp's rules used: Phi-3 keeps qkv_proj fused as `attn_qkv` and gate_up_proj as `ffn_up`,
no q/k permutation, LongRoPE lists as `rope_factors_long/short.weight`, the attention factor
resolved into `rope.scaling.attn_factor`, `rope.dimension_count` = rotated dimensions, and
`attention.sliding_window` 0 for none. SmolLM3 is converted as Llama (q/k permuted) and gets no
RoPE on every 4th layer from a fixed rule, not a key.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

transformers = pytest.importorskip("transformers")

from chatapp.errors import CorruptFileError, UnsupportedArchitectureError  # noqa: E402
from chatapp.weights.build import build_model  # noqa: E402
from chatapp.weights.gguf_loader import load_gguf  # noqa: E402
from gguf_writing import llama_cpp_permute, write_gguf  # noqa: E402

VOCAB = 61
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)
LAYER = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.qkv_proj": "attn_qkv",
         "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_up_proj": "ffn_up", "mlp.gate_proj": "ffn_gate",
         "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def _model(config, seed=0):
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model.eval()


def _convert(model, arch: str, path, permute: bool = False):
    cfg = model.config
    tensors = {}
    for name, value in model.state_dict().items():
        array = value.detach().numpy().astype(np.float32)
        top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
               "lm_head.weight": "output.weight"}
        if name in top:
            if not (name == "lm_head.weight" and cfg.tie_word_embeddings):
                tensors[top[name]] = array
            continue
        parts = name.split(".")
        kind = LAYER[".".join(parts[3:-1])]
        if permute and kind in ("attn_q", "attn_k"):
            array = llama_cpp_permute(array, cfg.num_attention_heads if kind == "attn_q" else cfg.num_key_value_heads)
        tensors[f"blk.{parts[2]}.{kind}.{parts[-1]}"] = array
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    meta = {f"{arch}.context_length": cfg.max_position_embeddings, f"{arch}.embedding_length": cfg.hidden_size,
            f"{arch}.block_count": cfg.num_hidden_layers, f"{arch}.feed_forward_length": cfg.intermediate_size,
            f"{arch}.attention.head_count": cfg.num_attention_heads,
            f"{arch}.attention.head_count_kv": cfg.num_key_value_heads,
            f"{arch}.attention.layer_norm_rms_epsilon": cfg.rms_norm_eps,
            f"{arch}.rope.freq_base": float(cfg.rope_parameters["rope_theta"])}
    if arch == "phi3":
        partial = cfg.rope_parameters.get("partial_rotary_factor", 1.0)
        meta[f"{arch}.rope.dimension_count"] = int(partial * cfg.hidden_size) // cfg.num_attention_heads
        meta[f"{arch}.attention.sliding_window"] = cfg.sliding_window or 0
        scaling = cfg.rope_parameters
        if scaling.get("rope_type") == "longrope":
            orig = cfg.original_max_position_embeddings
            scale = cfg.max_position_embeddings / orig
            meta[f"{arch}.rope.scaling.original_context_length"] = orig
            meta[f"{arch}.rope.scaling.attn_factor"] = (math.sqrt(1 + math.log(scale) / math.log(orig))
                                                         if scale > 1.0 else 1.0)
            tensors["rope_factors_long.weight"] = np.array(scaling["long_factor"], dtype=np.float32)
            tensors["rope_factors_short.weight"] = np.array(scaling["short_factor"], dtype=np.float32)
    assert head_dim > 0
    return write_gguf(path, {k: (v, Q.F32) for k, v in tensors.items()}, meta, arch=arch)


def _phi3(**extra):
    return transformers.Phi3Config(**{**COMMON, **extra})


def _longrope(pairs):
    return {"type": "longrope", "short_factor": [1.0 + 0.3 * i for i in range(pairs)],
            "long_factor": [2.0 + 2.0 * i for i in range(pairs)]}


CASES = {
    "phi4-mini-partial-longrope-tied": (lambda: _phi3(max_position_embeddings=128, original_max_position_embeddings=16,
                                                      partial_rotary_factor=0.75, tie_word_embeddings=True,
                                                      rope_scaling=_longrope(6)), "phi3", False),
    "phi3-mini-sliding-window": (lambda: _phi3(max_position_embeddings=64, sliding_window=8), "phi3", False),
    "smollm3": (lambda: transformers.SmolLM3Config(**COMMON, max_position_embeddings=64, rope_theta=1000.0),
                "smollm3", True),
}


@pytest.mark.parametrize("case", list(CASES))
@torch.no_grad()
def test_round_trip_logits_match_transformers(case, tmp_path):
    make, arch, permute = CASES[case]
    ref = _model(make())
    path = _convert(ref, arch, tmp_path / f"{case}.gguf", permute=permute)
    config, state = load_gguf(path)
    ours = build_model(config, state)
    assert config.arch == arch
    if case.startswith("phi4"):
        assert config.rotary_dim == 12 and config.rope_scaling.kind == "longrope" and config.tie_embeddings
    if case == "phi3-mini-sliding-window":
        assert config.sliding_window == 8 and config.rope_scaling is None
    if case == "smollm3":
        assert config.no_rope_layers == [3]
    tokens = torch.randint(0, VOCAB, (2, 21), generator=torch.Generator().manual_seed(7))
    assert (ours(tokens) - ref(tokens).logits).abs().max().item() <= 1e-4


def test_phi3_without_window_reads_zero_as_none(tmp_path):
    ref = _model(_phi3(max_position_embeddings=64, num_hidden_layers=1))
    config, _ = load_gguf(_convert(ref, "phi3", tmp_path / "m.gguf"))
    assert config.sliding_window is None and config.rotary_dim == config.head_dim


def test_phi3_with_one_factor_list_is_corrupt(tmp_path):
    ref = _model(_phi3(max_position_embeddings=128, original_max_position_embeddings=16, num_hidden_layers=1,
                       rope_scaling=_longrope(8)))
    path = _convert(ref, "phi3", tmp_path / "m.gguf")
    from gguf import GGUFReader  # rewrite the file without rope_factors_short

    reader = GGUFReader(str(path))
    tensors = {t.name: (np.array(t.data).reshape(tuple(reversed(t.shape.tolist()))), Q.F32)
               for t in reader.tensors if t.name != "rope_factors_short.weight"}
    meta = {k: (f.contents()) for k, f in reader.fields.items() if k.startswith("phi3.")}
    write_gguf(tmp_path / "half.gguf", tensors, meta, arch="phi3")
    with pytest.raises(CorruptFileError, match="half.gguf.*both rope_factors_long and rope_factors_short"):
        load_gguf(tmp_path / "half.gguf")


def test_partial_rotary_outside_phi3_names_the_architecture(tmp_path):
    ref = _model(transformers.SmolLM3Config(**COMMON, max_position_embeddings=64))
    path = _convert(ref, "smollm3", tmp_path / "m.gguf", permute=True)
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    tensors = {t.name: (np.array(t.data).reshape(tuple(reversed(t.shape.tolist()))), Q.F32) for t in reader.tensors}
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("smollm3.")}
    meta["smollm3.rope.dimension_count"] = 8
    write_gguf(tmp_path / "partial.gguf", tensors, meta, arch="smollm3")
    with pytest.raises(UnsupportedArchitectureError, match="partial rotary embeddings are supported for phi3, "
                                                           "not smollm3"):
        load_gguf(tmp_path / "partial.gguf")
