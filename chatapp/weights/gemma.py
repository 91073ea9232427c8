"""Gemma 2 and Gemma 3 (text): Hugging Face config.json -> ModelConfig, and their tensor names.

Gemma differs from Llama in arithmetic the decoder has flags for (see model/config.py): (1 + w)
RMSNorm before and after each sublayer, sqrt(dim)-scaled embeddings, a GELU-tanh gated MLP,
`query_pre_attn_scalar` in place of head_dim for the attention scale, soft-capped attention scores
(Gemma 2) and logits, and sliding-window layers between global ones. Gemma 3 adds q/k norms and
gives its sliding layers their own RoPE base. Absent keys take transformers' class defaults
(Gemma2Config, Gemma3TextConfig), as a config saved without them would load there.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from ..errors import CorruptFileError
from ..model.config import RopeScaling

log = logging.getLogger(__name__)

# (Hugging Face name, ours); Gemma's sublayers each have a norm before and after.
GEMMA_NAMES: list[tuple[str, str]] = [
    ("model.embed_tokens.weight", "tok_embeddings.weight"),
    ("model.norm.weight", "norm.weight"),
    ("lm_head.weight", "lm_head.weight"),
    ("model.layers.{i}.input_layernorm.weight", "layers.{i}.attn_norm.weight"),
    ("model.layers.{i}.post_attention_layernorm.weight", "layers.{i}.attn_post_norm.weight"),
    ("model.layers.{i}.pre_feedforward_layernorm.weight", "layers.{i}.mlp_norm.weight"),
    ("model.layers.{i}.post_feedforward_layernorm.weight", "layers.{i}.mlp_post_norm.weight"),
    ("model.layers.{i}.self_attn.q_proj.{p}", "layers.{i}.attn.q_proj.{p}"),
    ("model.layers.{i}.self_attn.k_proj.{p}", "layers.{i}.attn.k_proj.{p}"),
    ("model.layers.{i}.self_attn.v_proj.{p}", "layers.{i}.attn.v_proj.{p}"),
    ("model.layers.{i}.self_attn.o_proj.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("model.layers.{i}.self_attn.q_norm.weight", "layers.{i}.attn.q_norm.weight"),
    ("model.layers.{i}.self_attn.k_norm.weight", "layers.{i}.attn.k_norm.weight"),
    ("model.layers.{i}.mlp.gate_proj.{p}", "layers.{i}.mlp.gate_proj.{p}"),
    ("model.layers.{i}.mlp.up_proj.{p}", "layers.{i}.mlp.up_proj.{p}"),
    ("model.layers.{i}.mlp.down_proj.{p}", "layers.{i}.mlp.down_proj.{p}"),
]

# transformers' class defaults for the keys a saved config may leave out.
_DEFAULTS = {
    "gemma2": dict(head_dim=256, max_position_embeddings=8192, sliding_window=4096, query_pre_attn_scalar=256,
                   attn_logit_softcapping=50.0, final_logit_softcapping=30.0, pattern=2),
    "gemma3_text": dict(head_dim=256, max_position_embeddings=131072, sliding_window=4096,
                        query_pre_attn_scalar=256, attn_logit_softcapping=None, final_logit_softcapping=None,
                        pattern=6),
}
# Gemma 3 with its vision tower (model_type "gemma3"): the text model's config sits in `text_config`,
# which may leave out what Gemma3TextConfig defaults to; its tensors carry a prefix.
GEMMA3_TEXT_DEFAULTS = dict(vocab_size=262_208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                            num_attention_heads=8, num_key_value_heads=4)
GEMMA3_TEXT_PREFIXES = (("model.language_model.", "model."), ("language_model.model.", "model."),
                        ("language_model.lm_head.", "lm_head."))
GEMMA3_VISION_PREFIXES = ("vision_tower.", "model.vision_tower.", "multi_modal_projector.",
                          "model.multi_modal_projector.")
GEMMA3_THETA = {"full_attention": 1_000_000.0, "sliding_attention": 10_000.0}
GELU_TANH = ("gelu_pytorch_tanh", "gelu_new")  # the same tanh approximation


def _rope_of(params: dict[str, Any], theta: float, where: str) -> tuple[float, Optional[RopeScaling]]:
    """(theta, scaling) from one rope_parameters / rope_scaling dict."""
    theta = float(params.get("rope_theta", theta))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind in (None, "default"):
        return theta, None
    if kind != "linear":
        raise ValueError(f"Gemma: RoPE scaling type {kind!r} on {where} layers is not supported (supported: linear)")
    return theta, RopeScaling(kind="linear", factor=float(params["factor"]))


def gemma3_rope(hf: dict[str, Any]) -> tuple[float, Optional[RopeScaling], float, Optional[RopeScaling]]:
    """(global theta, global scaling, local theta, local scaling) from either layout:

    - transformers >= 5: `rope_parameters` nested by layer type, {"full_attention": {...},
      "sliding_attention": {...}};
    - older files: `rope_theta` (global), `rope_local_base_freq` (local) and `rope_scaling`
      (global layers only).
    A file carrying both that disagree is refused rather than one of them dropped.
    """
    nested = hf.get("rope_parameters")
    legacy = {k: hf[k] for k in ("rope_theta", "rope_local_base_freq", "rope_scaling") if hf.get(k) is not None}
    if nested and ("full_attention" in nested or "sliding_attention" in nested):
        full = dict(nested.get("full_attention") or {})
        local = dict(nested.get("sliding_attention") or {})
        for name, sub in (("full_attention", full), ("sliding_attention", local)):
            if not isinstance(sub, dict):
                raise ValueError(f"rope_parameters.{name} must be an object")
        result = (*_rope_of(full, GEMMA3_THETA["full_attention"], "global"),
                  *_rope_of(local, GEMMA3_THETA["sliding_attention"], "sliding-window"))
        disagree = [key for key, ours in (("rope_theta", result[0]), ("rope_local_base_freq", result[2]))
                    if key in legacy and float(legacy[key]) != ours]
        if "rope_scaling" in legacy and _rope_of(legacy["rope_scaling"], result[0], "global")[1] != result[1]:
            disagree.append("rope_scaling")
        if disagree:
            raise ValueError(f"Gemma 3: rope_parameters (by layer type) and {', '.join(disagree)} disagree; "
                             "remove one of them")
        return result
    # Flat layout; a flat `rope_parameters` (one dict) stands for the global layers.
    params = dict(nested or {})
    params.update(legacy.get("rope_scaling") or {})
    theta, scaling = _rope_of(params, float(legacy.get("rope_theta", GEMMA3_THETA["full_attention"])), "global")
    local = float(legacy.get("rope_local_base_freq", GEMMA3_THETA["sliding_attention"]))
    return theta, scaling, local, None


def gemma3_text_part(hf: dict[str, Any]) -> dict[str, Any]:
    """The text model's config of a Gemma 3 checkpoint with a vision tower (its vision is not run)."""
    text = hf.get("text_config")
    if not isinstance(text, dict):
        raise ValueError("Gemma 3 (model_type 'gemma3') without a text_config object")
    return {**GEMMA3_TEXT_DEFAULTS, "tie_word_embeddings": hf.get("tie_word_embeddings", True), **text,
            "_name_or_path": hf.get("_name_or_path", "")}


def gemma3_text_tensor(hf_name: str) -> Optional[str]:
    """A Gemma 3 (vision) checkpoint's tensor name as the text model's; None for the vision parts."""
    if hf_name.startswith(GEMMA3_VISION_PREFIXES):
        return None
    for prefix, replacement in GEMMA3_TEXT_PREFIXES:
        if hf_name.startswith(prefix):
            return replacement + hf_name[len(prefix):]
    return hf_name


def gemma_config_fields(hf: dict[str, Any], family: str) -> dict[str, Any]:
    """ModelConfig keyword arguments for a gemma2 / gemma3_text config.json (ValueError: unsupported)."""
    from .hf_names import _rope  # the shared flat-layout reader

    name = "Gemma 2" if family == "gemma2" else "Gemma 3"
    defaults = _DEFAULTS[family]
    act = hf.get("hidden_activation") or hf.get("hidden_act") or "gelu_pytorch_tanh"
    if act not in GELU_TANH:
        raise ValueError(f"{name}: hidden_activation {act!r} is not supported (only gelu_pytorch_tanh)")
    if hf.get("use_bidirectional_attention"):
        raise ValueError(f"{name}: use_bidirectional_attention (an embedding model) is not supported")

    def default(key: str) -> Any:
        return hf[key] if key in hf else defaults[key]

    n_layers = hf["num_hidden_layers"]
    layer_types = hf.get("layer_types")
    if layer_types is None:
        pattern = hf.get("sliding_window_pattern") or defaults["pattern"]
        layer_types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n_layers)]
    window = default("sliding_window")
    if window is None and "sliding_attention" in layer_types:
        layer_types = ["full_attention"] * n_layers  # no window: every layer is global
    fields: dict[str, Any] = dict(
        arch="gemma2" if family == "gemma2" else "gemma3",
        vocab_size=hf["vocab_size"], dim=hf["hidden_size"], n_layers=n_layers,
        n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
        head_dim=default("head_dim"),
        intermediate_size=hf["intermediate_size"],
        max_seq_len=default("max_position_embeddings"),
        norm="rmsnorm", norm_eps=hf.get("rms_norm_eps", 1e-6), norm_unit_offset=True, post_norms=True,
        embed_scale=True, mlp="geglu", positions="rope",
        qkv_bias=bool(hf.get("attention_bias", False)), o_bias=bool(hf.get("attention_bias", False)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        sliding_window=window, layer_types=tuple(layer_types),
        attn_scale=float(default("query_pre_attn_scalar")) ** -0.5,
        final_softcap=default("final_logit_softcapping"),
        name=hf.get("_name_or_path", ""),
    )
    if family == "gemma2":
        fields["rope_theta"], fields["rope_scaling"] = _rope(hf)
        fields["attn_softcap"] = default("attn_logit_softcapping")
    else:
        theta, scaling, local_theta, local_scaling = gemma3_rope(hf)
        fields.update(rope_theta=theta, rope_scaling=scaling, local_rope_theta=local_theta,
                      local_rope_scaling=local_scaling, qk_norm=True)
        if hf.get("attn_logit_softcapping") is not None:
            # transformers' Gemma3Attention never passes it on: the reference ignores it, so do we.
            log.warning("Gemma 3: attn_logit_softcapping=%s is ignored, as transformers ignores it",
                        hf["attn_logit_softcapping"])
    return fields


# -- GGUF ----------------------------------------------------------------------------------------
GEMMA_GGUF_ARCHITECTURES = ("gemma2", "gemma3")
# Layer counts of the 27B models, whose attention scale llama.cpp takes from dim / n_heads (their
# query_pre_attn_scalar: 144 for Gemma 2, 168 for Gemma 3) instead of head_dim: GGUF has no key for it.
_27B_LAYERS = {"gemma2": 46, "gemma3": 62}


def gemma_gguf_fields(meta, fields: dict[str, Any]) -> dict[str, Any]:
    """ModelConfig fields a gemma2 / gemma3 GGUF file adds to the Llama-like ones (gguf_config's
    `fields`), with llama.cpp's defaults (llama-model.cpp) for the keys its converter leaves out:
    Gemma 2: window 4096, soft-caps 50 / 30; Gemma 3: sliding pattern 6, local RoPE base 10000,
    a window only when the file names one."""
    arch, n_layers = meta.arch, fields["n_layers"]
    out: dict[str, Any] = dict(norm_unit_offset=True, post_norms=True, embed_scale=True, mlp="geglu")
    window = meta.get("attention.sliding_window", 4096 if arch == "gemma2" else None)
    pattern = meta.get("attention.sliding_window_pattern", 2 if arch == "gemma2" else 6)
    if window:
        out["sliding_window"] = meta.uniform_int("attention.sliding_window", window)
        if isinstance(pattern, list):  # one flag per layer: True for sliding-window layers
            if len(pattern) != n_layers:
                raise CorruptFileError(meta.path, f"{arch}.attention.sliding_window_pattern has {len(pattern)} "
                                                  f"entries for {n_layers} layers")
            sliding = [bool(flag) for flag in pattern]
        else:  # llama.cpp's set_swa_pattern(n): every n-th layer is global
            sliding = [pattern == 0 or i % pattern < pattern - 1 for i in range(n_layers)]
        out["layer_types"] = tuple("sliding_attention" if s else "full_attention" for s in sliding)
    else:
        out["sliding_window"] = None
    scale_dim = fields["dim"] // fields["n_heads"] if n_layers == _27B_LAYERS[arch] else fields["head_dim"]
    out["attn_scale"] = float(scale_dim) ** -0.5
    if arch == "gemma2":
        out["attn_softcap"] = meta.number("attn_logit_softcapping", 50.0)
        out["final_softcap"] = meta.number("final_logit_softcapping", 30.0)
    else:
        final = meta.get("final_logit_softcapping")
        out["final_softcap"] = None if final is None else meta.number("final_logit_softcapping", 0.0)
        out["qk_norm"] = True
        out["local_rope_theta"] = meta.number("rope.freq_base_swa", 10000.0)
    return out


# -- export (training/export.py) -----------------------------------------------------------------
def gemma_hf_config(config) -> dict[str, Any]:
    """config.json fields for a gemma2 / gemma3 ModelConfig (ValueError for what Gemma's config
    cannot express); transformers >= 5's rope_parameters, with the older keys alongside."""
    family = "gemma2" if config.arch == "gemma2" else "gemma3_text"
    if not (config.norm == "rmsnorm" and config.norm_unit_offset and config.post_norms and config.embed_scale
            and config.mlp == "geglu" and config.positions == "rope" and config.qk_norm == (family != "gemma2")):
        raise ValueError(f"a {config.arch} model needs Gemma's norms, scaled embeddings, GELU gate and RoPE")
    if config.qkv_bias != config.o_bias or config.mlp_bias:
        raise ValueError(f"{config.arch}'s attention_bias covers q/k/v and o together, and it has no MLP bias")
    scalar = config.attn_scale ** -2 if config.attn_scale is not None else float(config.head_dim)
    if abs(scalar - round(scalar)) > 1e-3:
        raise ValueError(f"the attention scale 1/sqrt({scalar:.4g}) is no whole query_pre_attn_scalar")
    layer_types = config.layer_types or tuple(
        "sliding_attention" if config.sliding_window is not None else "full_attention" for _ in range(config.n_layers))

    def rope(theta: float, scaling: Optional[RopeScaling]) -> dict[str, Any]:
        if scaling is not None and scaling.kind != "linear":
            raise ValueError(f"Gemma's config holds linear RoPE scaling only, not {scaling.kind}")
        extra = {"rope_type": "linear", "factor": scaling.factor} if scaling else {"rope_type": "default"}
        return {**extra, "rope_theta": theta}

    hf: dict[str, Any] = {
        "model_type": family, "architectures": ["Gemma2ForCausalLM" if family == "gemma2" else "Gemma3ForCausalLM"],
        "vocab_size": config.vocab_size, "hidden_size": config.dim, "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.n_layers, "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads, "head_dim": config.head_dim,
        "max_position_embeddings": config.max_seq_len, "rms_norm_eps": config.norm_eps,
        "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": config.qkv_bias, "query_pre_attn_scalar": round(scalar),
        "sliding_window": config.sliding_window, "layer_types": list(layer_types),
        "attn_logit_softcapping": config.attn_softcap, "final_logit_softcapping": config.final_softcap,
        "rope_theta": config.rope_theta,
    }
    if family == "gemma2":
        hf["rope_parameters"] = rope(config.rope_theta, config.rope_scaling)
        hf["rope_scaling"] = None if config.rope_scaling is None else {"rope_type": "linear",
                                                                       "factor": config.rope_scaling.factor}
    else:
        local = config.local_rope_theta if config.local_rope_theta is not None else config.rope_theta
        local_scaling = config.local_rope_scaling if config.local_rope_theta is not None else config.rope_scaling
        hf["rope_parameters"] = {"full_attention": rope(config.rope_theta, config.rope_scaling),
                                 "sliding_attention": rope(local, local_scaling)}
        hf["rope_local_base_freq"] = local
    return hf
