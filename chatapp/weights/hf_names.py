"""Hugging Face config.json and tensor names -> ours (one declarative map per family)."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Optional

from ..errors import UnsupportedArchitectureError
from ..model.config import ConfigError, ModelConfig, RopeScaling
from .experts import MIXTRAL_EXPERT_NAMES, QK_NORM_NAMES, QWEN3_MOE_EXPERT_NAMES, hf_moe_fields
from .gemma import GEMMA_NAMES, gemma3_text_part, gemma3_text_tensor, gemma_config_fields
from .name_map import NameMap
from .phi3 import PHI3_NAMES, phi3_config

log = logging.getLogger(__name__)

SUPPORTED = ("llama", "mistral", "qwen2", "gpt2", "qwen3", "qwen3_moe", "mixtral", "gemma2", "gemma3_text",
             "phi3", "smollm3", "gemma3")

# (Hugging Face name, ours), read both ways (see name_map.py): `{i}` is the layer index, `{p}`
# weight or bias. The loader reads Hugging Face -> ours (our_name); the folder exporter and the
# PEFT adapter writer ours -> Hugging Face (hf_name). Llama, Mistral and Qwen2 share one layout.
LLAMA_NAMES: list[tuple[str, str]] = [
    ("model.embed_tokens.weight", "tok_embeddings.weight"),
    ("model.norm.weight", "norm.weight"),
    ("lm_head.weight", "lm_head.weight"),
    ("model.layers.{i}.input_layernorm.weight", "layers.{i}.attn_norm.weight"),
    ("model.layers.{i}.post_attention_layernorm.weight", "layers.{i}.mlp_norm.weight"),
    ("model.layers.{i}.self_attn.q_proj.{p}", "layers.{i}.attn.q_proj.{p}"),
    ("model.layers.{i}.self_attn.k_proj.{p}", "layers.{i}.attn.k_proj.{p}"),
    ("model.layers.{i}.self_attn.v_proj.{p}", "layers.{i}.attn.v_proj.{p}"),
    ("model.layers.{i}.self_attn.o_proj.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("model.layers.{i}.mlp.gate_proj.{p}", "layers.{i}.mlp.gate_proj.{p}"),
    ("model.layers.{i}.mlp.up_proj.{p}", "layers.{i}.mlp.up_proj.{p}"),
    ("model.layers.{i}.mlp.down_proj.{p}", "layers.{i}.mlp.down_proj.{p}"),
]

# GPT-2's q/k/v are one fused c_attn (our pseudo-name `attn.qkv`, split by the loader and
# fused by the exporter). Files may omit the `transformer.` prefix; we write it.
GPT2_PREFIX = "transformer."
GPT2_NAMES: list[tuple[str, str]] = [
    ("transformer.wte.weight", "tok_embeddings.weight"),
    ("transformer.wpe.weight", "pos_embeddings.weight"),
    ("transformer.ln_f.{p}", "norm.{p}"),
    ("lm_head.weight", "lm_head.weight"),
    ("transformer.h.{i}.ln_1.{p}", "layers.{i}.attn_norm.{p}"),
    ("transformer.h.{i}.ln_2.{p}", "layers.{i}.mlp_norm.{p}"),
    ("transformer.h.{i}.attn.c_attn.{p}", "layers.{i}.attn.qkv.{p}"),
    ("transformer.h.{i}.attn.c_proj.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("transformer.h.{i}.mlp.c_fc.{p}", "layers.{i}.mlp.up_proj.{p}"),
    ("transformer.h.{i}.mlp.c_proj.{p}", "layers.{i}.mlp.down_proj.{p}"),
]
# GPT-2's Conv1D layers store their weight (in, out), transposed from nn.Linear's (out, in).
GPT2_CONV1D = (".attn.qkv.", ".attn.o_proj.", ".mlp.up_proj.", ".mlp.down_proj.")

_TABLES = {"llama": NameMap(LLAMA_NAMES), "mistral": NameMap(LLAMA_NAMES), "qwen2": NameMap(LLAMA_NAMES),
           "gpt2": NameMap(GPT2_NAMES), "qwen3": NameMap(LLAMA_NAMES + QK_NORM_NAMES),
           # Qwen3-MoE's dense layers (mlp_only_layers) keep the llama MLP names.
           "qwen3_moe": NameMap(LLAMA_NAMES + QK_NORM_NAMES + QWEN3_MOE_EXPERT_NAMES),
           "mixtral": NameMap(LLAMA_NAMES + MIXTRAL_EXPERT_NAMES),
           "gemma2": NameMap(GEMMA_NAMES), "gemma3_text": NameMap(GEMMA_NAMES),
           "gemma3": NameMap(GEMMA_NAMES),  # Gemma 3 with vision (text part, see our_name); our arch name
           "phi3": NameMap(PHI3_NAMES), "smollm3": NameMap(LLAMA_NAMES)}

# Tensors that exist in some checkpoints but carry nothing our model needs.
IGNORED = re.compile(r".*(rotary_emb\.inv_freq|\.attn\.bias|\.attn\.masked_bias)$")


def our_name(hf_name: str, family: str) -> Optional[str]:
    """Our parameter name for a Hugging Face tensor name; None for tensors we ignore, "" for
    unknown ones (the caller reports them)."""
    if IGNORED.match(hf_name):
        return None
    if family == "gpt2" and not hf_name.startswith((GPT2_PREFIX, "lm_head.")):
        hf_name = GPT2_PREFIX + hf_name
    if family == "gemma3":
        hf_name = gemma3_text_tensor(hf_name)
        if hf_name is None:
            return None  # the vision tower and projector: the text model runs without them
    return _TABLES[family].ours(hf_name) or ""


def hf_name(ours: str, family: str) -> Optional[str]:
    """The Hugging Face name of our parameter `ours` (GPT-2: `attn.qkv` for the fused q/k/v);
    None when the family has none."""
    return _TABLES[family].theirs(ours)


def is_conv1d_weight(ours: str, family: str) -> bool:
    """Whether the Hugging Face file stores this weight of ours transposed (GPT-2's Conv1D)."""
    return family == "gpt2" and ours.endswith(".weight") and any(part in ours for part in GPT2_CONV1D)


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
    if family in ("mistral", "mixtral"):
        sliding = hf.get("sliding_window")
    if family in ("qwen2", "qwen3", "qwen3_moe") and (hf.get("use_sliding_window") or
                                                      "sliding_attention" in (hf.get("layer_types") or [])):
        raise ValueError(f"{QWEN_NAMES[family]} per-layer sliding-window attention is not supported")
    moe = hf_moe_fields(hf, family) if family in ("mixtral", "qwen3_moe") else {}
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
        qk_norm=family in ("qwen3", "qwen3_moe"),
        name=hf.get("_name_or_path", ""),
        **moe,
    )


def _smollm3(hf: dict[str, Any]) -> ModelConfig:
    """SmolLM3: Llama with no RoPE on the layers `no_rope_layers` flags 0 (every 4th by default)."""
    if hf.get("use_sliding_window") and "sliding_attention" in (hf.get("layer_types") or ["sliding_attention"]):
        raise ValueError("SmolLM3 sliding-window attention layers (use_sliding_window) are not supported")
    config = _llama_like({**hf, "layer_types": None}, "smollm3")
    flags = hf.get("no_rope_layers")
    if flags is None:
        interval = hf.get("no_rope_layer_interval", 4)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
            raise ConfigError(f"SmolLM3 no_rope_layer_interval must be a positive whole number, got {interval!r:.80}")
        flags = [int((i + 1) % interval != 0) for i in range(config.n_layers)]
    if not isinstance(flags, list) or len(flags) != config.n_layers or any(f not in (0, 1) for f in flags):
        raise ConfigError(f"SmolLM3 no_rope_layers must hold one 0 or 1 per layer ({config.n_layers}), "
                          f"got {flags!r:.80}")
    config.no_rope_layers = [i for i, uses_rope in enumerate(flags) if not uses_rope]
    config.validate()
    return config


QWEN_NAMES = {"qwen2": "Qwen2", "qwen3": "Qwen3", "qwen3_moe": "Qwen3-MoE"}


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
    "qwen3": lambda hf: _llama_like(hf, "qwen3"),
    "qwen3_moe": lambda hf: _llama_like(hf, "qwen3_moe"),
    "mixtral": lambda hf: _llama_like(hf, "mixtral"),
    "gemma2": lambda hf: ModelConfig(**gemma_config_fields(hf, "gemma2")),
    "gemma3_text": lambda hf: ModelConfig(**gemma_config_fields(hf, "gemma3_text")),
    "phi3": phi3_config,
    "smollm3": _smollm3,
    "gemma3": lambda hf: ModelConfig(**gemma_config_fields(gemma3_text_part(hf), "gemma3_text")),
}


def family_of(hf: dict[str, Any], path) -> str:
    family = hf.get("model_type")
    if family == "gemma3":
        log.info("%s: Gemma 3 with a vision tower: loading its text model only (images are not supported)", path)
    if family not in CONFIG_BUILDERS:
        raise UnsupportedArchitectureError(
            path, f"model_type {family!r} is not supported",
            f"supported: {', '.join(SUPPORTED)}")
    return family
