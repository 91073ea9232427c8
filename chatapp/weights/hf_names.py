"""Hugging Face config.json and tensor names -> ours (one declarative map per family)."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from ..errors import UnsupportedArchitectureError
from ..model.config import ModelConfig, RopeScaling

SUPPORTED = ("llama", "mistral", "qwen2", "gpt2")

# Llama, Mistral and Qwen2 share one layout. Each (pattern, our name) maps a regex over the
# Hugging Face name; `{i}` is the layer index.
LLAMA_NAMES: list[tuple[str, str]] = [
    (r"model\.embed_tokens\.weight", "tok_embeddings.weight"),
    (r"model\.norm\.weight", "norm.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", "layers.{i}.attn_norm.weight"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", "layers.{i}.mlp_norm.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.(q|k|v|o)_proj\.(weight|bias)", "layers.{i}.attn.{1}_proj.{2}"),
    (r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.(weight|bias)", "layers.{i}.mlp.{1}_proj.{2}"),
]

# GPT-2 uses Conv1D layers, whose weights are stored (in, out): transposed in gpt2_transform.
GPT2_NAMES: list[tuple[str, str]] = [
    (r"(?:transformer\.)?wte\.weight", "tok_embeddings.weight"),
    (r"(?:transformer\.)?wpe\.weight", "pos_embeddings.weight"),
    (r"(?:transformer\.)?ln_f\.(weight|bias)", "norm.{0}"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"(?:transformer\.)?h\.(\d+)\.ln_1\.(weight|bias)", "layers.{i}.attn_norm.{1}"),
    (r"(?:transformer\.)?h\.(\d+)\.ln_2\.(weight|bias)", "layers.{i}.mlp_norm.{1}"),
    (r"(?:transformer\.)?h\.(\d+)\.attn\.c_attn\.(weight|bias)", "layers.{i}.attn.qkv.{1}"),
    (r"(?:transformer\.)?h\.(\d+)\.attn\.c_proj\.(weight|bias)", "layers.{i}.attn.o_proj.{1}"),
    (r"(?:transformer\.)?h\.(\d+)\.mlp\.c_fc\.(weight|bias)", "layers.{i}.mlp.up_proj.{1}"),
    (r"(?:transformer\.)?h\.(\d+)\.mlp\.c_proj\.(weight|bias)", "layers.{i}.mlp.down_proj.{1}"),
]

# Tensors that exist in some checkpoints but carry nothing our model needs.
IGNORED = re.compile(r".*(rotary_emb\.inv_freq|\.attn\.bias|\.attn\.masked_bias)$")


def our_name(hf_name: str, family: str) -> Optional[str]:
    """Our parameter name for a Hugging Face tensor name; None for tensors we ignore."""
    if IGNORED.match(hf_name):
        return None
    table = GPT2_NAMES if family == "gpt2" else LLAMA_NAMES
    for pattern, target in table:
        m = re.fullmatch(pattern, hf_name)
        if m:
            groups = m.groups()
            if target.count("{i}"):
                return target.format(*groups, i=groups[0])
            return target.format(*groups)
    return ""  # unknown: the caller reports it


def _rope(hf: dict[str, Any]) -> tuple[float, Optional[RopeScaling]]:
    # transformers >= 5 writes `rope_parameters`; older configs `rope_theta` + `rope_scaling`.
    params = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind in (None, "default"):
        return theta, None
    if kind not in ("linear", "llama3"):
        raise ValueError(f"RoPE scaling type {kind!r} is not supported (supported: linear, llama3)")
    extra = {}
    if kind == "llama3":
        extra = {k: params[k] for k in ("low_freq_factor", "high_freq_factor",
                                        "original_max_position_embeddings") if k in params}
    return theta, RopeScaling(kind=kind, factor=float(params["factor"]), **extra)


def _llama_like(hf: dict[str, Any], family: str) -> ModelConfig:
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {hf['hidden_act']!r} is not supported (only silu)")
    theta, scaling = _rope(hf)
    sliding = None
    if family == "mistral":
        sliding = hf.get("sliding_window")
    if family == "qwen2" and (hf.get("use_sliding_window") or
                              "sliding_attention" in (hf.get("layer_types") or [])):
        raise ValueError("Qwen2 per-layer sliding-window attention is not supported")
    return ModelConfig(
        arch=family,
        vocab_size=hf["vocab_size"],
        dim=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
        head_dim=hf.get("head_dim") or None,
        intermediate_size=hf["intermediate_size"],
        max_seq_len=hf.get("max_position_embeddings", 2048),
        norm="rmsnorm",
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        mlp="swiglu",
        positions="rope",
        rope_theta=theta,
        rope_scaling=scaling,
        qkv_bias=family == "qwen2" or bool(hf.get("attention_bias", False)),
        o_bias=bool(hf.get("attention_bias", False)),
        mlp_bias=bool(hf.get("mlp_bias", False)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        sliding_window=sliding,
        name=hf.get("_name_or_path", ""),
    )


def _gpt2(hf: dict[str, Any]) -> ModelConfig:
    if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"activation_function {hf['activation_function']!r} is not supported")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"):
        if hf.get(flag):
            raise ValueError(f"GPT-2 option {flag} is not supported")
    if hf.get("scale_attn_weights") is False:
        raise ValueError("GPT-2 option scale_attn_weights=false is not supported")
    dim = hf["n_embd"]
    return ModelConfig(
        arch="gpt2",
        vocab_size=hf["vocab_size"],
        dim=dim,
        n_layers=hf["n_layer"],
        n_heads=hf["n_head"],
        intermediate_size=hf.get("n_inner") or 4 * dim,
        max_seq_len=hf["n_positions"],
        norm="layernorm",
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        mlp="gelu",
        positions="learned",
        qkv_bias=True,
        o_bias=True,
        mlp_bias=True,
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        name=hf.get("_name_or_path", ""),
    )


CONFIG_BUILDERS: dict[str, Callable[[dict[str, Any]], ModelConfig]] = {
    "llama": lambda hf: _llama_like(hf, "llama"),
    "mistral": lambda hf: _llama_like(hf, "mistral"),
    "qwen2": lambda hf: _llama_like(hf, "qwen2"),
    "gpt2": _gpt2,
}


def family_of(hf: dict[str, Any], path) -> str:
    family = hf.get("model_type")
    if family not in CONFIG_BUILDERS:
        raise UnsupportedArchitectureError(
            path, f"model_type {family!r} is not supported",
            f"supported: {', '.join(SUPPORTED)}")
    return family
