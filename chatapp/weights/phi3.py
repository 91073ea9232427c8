"""Phi-3 / Phi-3.5 / Phi-4-mini (Hugging Face and GGUF "phi3"): config, names, fused tensors.

Phi-3 is the Llama layout with two fused projections in its files, in both formats:
- q/k/v as one `qkv_proj` (GGUF `attn_qkv`): rows q (n_heads * head_dim), then k, then v
  (n_kv_heads * head_dim each); our pseudo-name `attn.qkv`, as for GPT-2.
- gate/up as one `gate_up_proj` (GGUF `ffn_up`, 2 * intermediate rows): gate first, up second
  (transformers' `chunk(2)`, llama.cpp's swiglu on the halves); our pseudo-name `mlp.gate_up`.
Both are split at load in exactly one place, `split_fused` below. llama.cpp does not permute
Phi-3's q/k rows (its converter is not the Llama one), so there is nothing to undo.

RoPE: "longrope" (older configs: "su") with short/long factor lists (model/longrope.py);
Phi-4-mini rotates only part of each head (`partial_rotary_factor`, GGUF
`rope.dimension_count`). Any other scaling type raises an error naming Phi-3 and the type.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..model.config import ConfigError, ModelConfig, RopeScaling

FUSED_QKV = ".attn.qkv."
FUSED_GATE_UP = ".mlp.gate_up."

# (Hugging Face name, ours), read both ways (see name_map.py).
PHI3_NAMES: list[tuple[str, str]] = [
    ("model.embed_tokens.weight", "tok_embeddings.weight"),
    ("model.norm.weight", "norm.weight"),
    ("lm_head.weight", "lm_head.weight"),
    ("model.layers.{i}.input_layernorm.weight", "layers.{i}.attn_norm.weight"),
    ("model.layers.{i}.post_attention_layernorm.weight", "layers.{i}.mlp_norm.weight"),
    ("model.layers.{i}.self_attn.qkv_proj.{p}", "layers.{i}.attn.qkv.{p}"),
    ("model.layers.{i}.self_attn.o_proj.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("model.layers.{i}.mlp.gate_up_proj.{p}", "layers.{i}.mlp.gate_up.{p}"),
    ("model.layers.{i}.mlp.down_proj.{p}", "layers.{i}.mlp.down_proj.{p}"),
]

# GGUF names (llama.cpp's `phi3` tensors); attn_q/k/v too, which llama.cpp also accepts.
PHI3_GGUF_NAMES: list[tuple[str, str]] = [
    ("token_embd.weight", "tok_embeddings.weight"),
    ("output_norm.weight", "norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("blk.{i}.attn_norm.weight", "layers.{i}.attn_norm.weight"),
    ("blk.{i}.attn_qkv.{p}", "layers.{i}.attn.qkv.{p}"),
    ("blk.{i}.attn_q.{p}", "layers.{i}.attn.q_proj.{p}"),
    ("blk.{i}.attn_k.{p}", "layers.{i}.attn.k_proj.{p}"),
    ("blk.{i}.attn_v.{p}", "layers.{i}.attn.v_proj.{p}"),
    ("blk.{i}.attn_output.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("blk.{i}.ffn_norm.weight", "layers.{i}.mlp_norm.weight"),
    ("blk.{i}.ffn_up.{p}", "layers.{i}.mlp.gate_up.{p}"),
    ("blk.{i}.ffn_down.{p}", "layers.{i}.mlp.down_proj.{p}"),
]
# LongRoPE's factor lists, stored as tensors by llama.cpp; gguf_config reads them.
GGUF_ROPE_FACTORS = ("rope_factors_long.weight", "rope_factors_short.weight")

LONGROPE_NAMES = ("longrope", "su")


def is_fused(name: str) -> bool:
    return FUSED_QKV in name or FUSED_GATE_UP in name


def fused_parts(name: str, config: ModelConfig) -> list[tuple[str, int]]:
    """Our parameters a fused tensor `name` holds, with their row counts, in file order."""
    if FUSED_QKV in name:
        q_rows, kv_rows = config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
        return [(name.replace(FUSED_QKV, f".attn.{p}_proj."), rows)
                for p, rows in zip("qkv", (q_rows, kv_rows, kv_rows))]
    if FUSED_GATE_UP in name:
        return [(name.replace(FUSED_GATE_UP, f".mlp.{p}_proj."), config.intermediate_size) for p in ("gate", "up")]
    raise ValueError(f"{name} is not a fused tensor")


def split_fused(name: str, tensor: torch.Tensor, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The one place fused q/k/v and gate/up tensors are split (rows; weights and biases alike).

    ValueError when the rows do not add up to what the config implies.
    """
    parts = fused_parts(name, config)
    rows = [r for _, r in parts]
    if tensor.shape[0] != sum(rows):
        raise ValueError(f"fused tensor {name} has shape {list(tensor.shape)}, expected first dimension "
                         f"{sum(rows)} ({' + '.join(map(str, rows))})")
    # (sum rows, ...) -> one (rows, ...) view per part
    return {part: value for (part, _), value in zip(parts, tensor.split(rows, dim=0))}


def _number(params: dict[str, Any], key: str) -> Optional[float]:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"Phi-3 RoPE field {key!r} must be a number, got {value!r:.80}")
    return float(value)


def phi3_rope(hf: dict[str, Any]) -> tuple[float, Optional[RopeScaling], float]:
    """(theta, scaling, partial_rotary_factor) from either config layout (rope_parameters of
    transformers >= 5, or rope_theta + rope_scaling + top-level fields)."""
    params = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    theta = _number(params, "rope_theta") or _number(hf, "rope_theta") or 10000.0
    partial = _number(params, "partial_rotary_factor") or _number(hf, "partial_rotary_factor") or 1.0
    kind = params.get("rope_type", params.get("type", "default"))
    if kind in (None, "default"):
        return theta, None, partial
    if kind not in LONGROPE_NAMES:
        raise ValueError(f"Phi-3 RoPE scaling {kind!r} is not supported (supported: longrope, su)")
    # transformers gives the top-level field priority (Phi-3 configs keep it there).
    original = hf.get("original_max_position_embeddings") or params.get("original_max_position_embeddings")
    if not isinstance(original, int) or isinstance(original, bool) or original <= 0:
        raise ConfigError(f"Phi-3 longrope RoPE scaling needs original_max_position_embeddings, got {original!r}")
    factor = _number(params, "factor") or hf["max_position_embeddings"] / original
    scaling = RopeScaling(kind="longrope", factor=factor, original_max_position_embeddings=original,
                          short_factor=params.get("short_factor"), long_factor=params.get("long_factor"),
                          attention_factor=_number(params, "attention_factor"))
    return theta, scaling, partial


def phi3_config(hf: dict[str, Any]) -> ModelConfig:
    """ModelConfig for a Hugging Face "phi3" config.json."""
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"Phi-3 hidden_act {hf['hidden_act']!r} is not supported (only silu)")
    theta, scaling, partial = phi3_rope(hf)
    return ModelConfig(
        arch="phi3",
        vocab_size=hf["vocab_size"],
        dim=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
        head_dim=hf.get("head_dim") or None,
        intermediate_size=hf["intermediate_size"],
        max_seq_len=hf.get("max_position_embeddings", 4096),
        norm_eps=hf.get("rms_norm_eps", 1e-5),
        rope_theta=theta,
        rope_scaling=scaling,
        partial_rotary_factor=partial,
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        sliding_window=hf.get("sliding_window") or None,
        name=hf.get("_name_or_path", ""),
    )


def longrope_from_gguf(long: Optional[list[float]], short: Optional[list[float]], original: Any,
                       attention_factor: Any, context: int) -> Optional[RopeScaling]:
    """LongRoPE as llama.cpp's converter stores it: the factor lists as rope_factors_long/short
    tensors, `rope.scaling.original_context_length`, `rope.scaling.attn_factor` (already
    resolved), and the extended length as `context_length`. None when the file has no lists."""
    if long is None and short is None:
        return None
    if long is None or short is None:
        raise ConfigError("Phi-3 LongRoPE needs both rope_factors_long and rope_factors_short")
    if not isinstance(original, int) or isinstance(original, bool) or original <= 0:
        raise ConfigError(f"Phi-3 LongRoPE needs rope.scaling.original_context_length, got {original!r}")
    if attention_factor is not None and (isinstance(attention_factor, bool)
                                         or not isinstance(attention_factor, (int, float))):
        raise ConfigError(f"rope.scaling.attn_factor is {attention_factor!r}, not a number")
    return RopeScaling(kind="longrope", factor=context / original, original_max_position_embeddings=original,
                       short_factor=short, long_factor=long,
                       attention_factor=None if attention_factor is None else float(attention_factor))


def fuse_for_export(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Our separate q/k/v and gate/up tensors back into Phi-3's fused ones (split_fused's inverse)."""
    out = dict(state)
    for name in list(state):
        for fused_part, first in ((FUSED_QKV, ".attn.q_proj."), (FUSED_GATE_UP, ".mlp.gate_proj.")):
            if first in name:
                fused = name.replace(first, fused_part)
                parts = [part for part, _ in fused_parts(fused, config)]
                out[fused] = torch.cat([out.pop(part) for part in parts], dim=0)  # (sum rows, ...)
    return out


def phi3_hf_config(config: ModelConfig) -> dict[str, Any]:
    """The Phi-3 fields of config.json (the exporter adds the shared ones)."""
    fields: dict[str, Any] = {"sliding_window": config.sliding_window,
                              "partial_rotary_factor": config.partial_rotary_factor}
    scaling = config.rope_scaling
    fields["rope_parameters"] = {"rope_type": "default", "rope_theta": config.rope_theta,
                                 "partial_rotary_factor": config.partial_rotary_factor}
    if scaling is not None:
        if scaling.kind != "longrope":
            raise ValueError(f"Phi-3 has no {scaling.kind} RoPE scaling")
        rope = {"rope_type": "longrope", "rope_theta": config.rope_theta, "factor": scaling.factor,
                "original_max_position_embeddings": scaling.original_max_position_embeddings,
                "short_factor": scaling.short_factor, "long_factor": scaling.long_factor,
                "partial_rotary_factor": config.partial_rotary_factor}
        if scaling.attention_factor is not None:
            rope["attention_factor"] = scaling.attention_factor
        fields.update(original_max_position_embeddings=scaling.original_max_position_embeddings,
                      rope_scaling=rope, rope_parameters=rope)
    return fields


# -- LoRA adapters on the fused layers (PEFT format; weights/peft_adapter.py) -----------------
# Our LoRA wraps the split layers; PEFT names Phi-3's fused ones. An adapter is written there by
# rank stacking: A = cat(A_q, A_k, A_v) (3r x in), B = block-diagonal of B_q, B_k, B_v, so
# B @ A stacks B_q A_q, B_k A_k, B_v A_v exactly; a part the user did not target is a zero block.
LORA_FUSED_GROUPS = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
LORA_PART_GROUP = {part: fused for fused, parts in LORA_FUSED_GROUPS.items() for part in parts}
_OUR_FUSED = {"qkv_proj": FUSED_QKV, "gate_up_proj": FUSED_GATE_UP}


def fused_lora_module(ours: str) -> Optional[tuple[str, str]]:
    """`layers.0.attn.k_proj` -> (`layers.0.attn.qkv`, "qkv_proj"); None for an unfused layer."""
    parent, _, short = ours.rpartition(".")
    group = LORA_PART_GROUP.get(short)
    if group is None:
        return None
    return parent.rpartition(".")[0] + _OUR_FUSED[group][:-1], group


def lora_part_rows(fused: str, config: ModelConfig) -> list[tuple[str, int]]:
    """Our layers a fused LoRA module (`layers.0.attn.qkv`) stands for, with their output rows."""
    return [(name[: -len(".weight")], rows) for name, rows in fused_parts(fused + ".weight", config)]


def fuse_lora(pairs: list[Optional[tuple[torch.Tensor, torch.Tensor]]], rows: list[int], r: int,
              in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) of the fused layer from each part's (A (r, in), B (rows, r)), None for a zero block."""
    n = len(rows)
    dtype = next((a.dtype for pair in pairs if pair is not None for a in pair[:1]), torch.float32)
    a_fused = torch.zeros(n * r, in_features, dtype=dtype)
    b_fused = torch.zeros(sum(rows), n * r, dtype=dtype)
    start = 0
    for i, (pair, out) in enumerate(zip(pairs, rows)):
        if pair is not None:
            a_fused[i * r:(i + 1) * r] = pair[0]
            b_fused[start:start + out, i * r:(i + 1) * r] = pair[1]
        start += out
    return a_fused, b_fused


def split_lora(name: str, a: torch.Tensor, b: torch.Tensor, rows: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """fuse_lora's inverse: each part's (A, B). ValueError when the shapes do not stack `len(rows)`
    parts or B is not block-diagonal (an adapter trained on the fused layer itself)."""
    n = len(rows)
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1] or b.shape[0] != sum(rows):
        raise ValueError(f"{name}: lora_A {list(a.shape)} and lora_B {list(b.shape)} do not fit a fused layer of "
                         f"{sum(rows)} output rows ({' + '.join(map(str, rows))})")
    if a.shape[0] % n:
        raise ValueError(f"{name}: rank {a.shape[0]} is not {n} stacked ranks (one per part): the adapter was "
                         "trained on the fused layer, which our separate layers cannot hold")
    r = a.shape[0] // n
    out, start = [], 0
    for i, height in enumerate(rows):
        block_rows = b[start:start + height]
        off = torch.cat([block_rows[:, :i * r], block_rows[:, (i + 1) * r:]], dim=1)
        if off.numel() and bool(off.ne(0).any()):
            raise ValueError(f"{name}: lora_B is not block-diagonal over its {n} parts: the adapter was trained on "
                             "the fused layer, which our separate layers cannot hold")
        out.append((a[i * r:(i + 1) * r], block_rows[:, i * r:(i + 1) * r]))
        start += height
    return out
