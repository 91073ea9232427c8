"""Mixture-of-experts weights (Mixtral, Qwen3-MoE): config fields and expert tensors.

Hugging Face files hold one tensor per expert and projection
(`model.layers.0.mlp.experts.3.gate_proj.weight`); the name tables map each to the pseudo-name
`layers.0.mlp.gate_exps.3`, and `stack_experts` stacks them into our model's one tensor per
projection, `layers.0.mlp.gate_exps` (n_experts, hidden, dim). llama.cpp's GGUF files already
store them stacked (`blk.0.ffn_gate_exps.weight`). `unstack_experts` goes back, for export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..errors import CorruptFileError
from ..model.config import ModelConfig

# Our stacked parameter, and its per-expert pseudo-name `...gate_exps.{e}`.
EXPERT_STACK = re.compile(r"layers\.\d+\.mlp\.(?:gate|up|down)_exps")
EXPERT_PIECE = re.compile(r"(?P<stack>layers\.\d+\.mlp\.(?:gate|up|down)_exps)\.(?P<e>\d+)")


def _expert_names(mlp: str, gate: str, up: str, down: str) -> list[tuple[str, str]]:
    """Name pairs for one family's experts and router, `mlp` being the HF module path."""
    return [
        (f"model.layers.{{i}}.{mlp}.gate.weight", "layers.{i}.mlp.router.weight"),
        (f"model.layers.{{i}}.{mlp}.experts.{{e}}.{gate}.weight", "layers.{i}.mlp.gate_exps.{e}"),
        (f"model.layers.{{i}}.{mlp}.experts.{{e}}.{up}.weight", "layers.{i}.mlp.up_exps.{e}"),
        (f"model.layers.{{i}}.{mlp}.experts.{{e}}.{down}.weight", "layers.{i}.mlp.down_exps.{e}"),
    ]


MIXTRAL_EXPERT_NAMES = _expert_names("block_sparse_moe", "w1", "w3", "w2")
QWEN3_MOE_EXPERT_NAMES = _expert_names("mlp", "gate_proj", "up_proj", "down_proj")

# Qwen3's per-head q/k norms (Qwen3 and Qwen3-MoE).
QK_NORM_NAMES = [
    ("model.layers.{i}.self_attn.q_norm.weight", "layers.{i}.attn.q_norm.weight"),
    ("model.layers.{i}.self_attn.k_norm.weight", "layers.{i}.attn.k_norm.weight"),
]


def hf_moe_fields(hf: dict[str, Any], family: str) -> dict[str, Any]:
    """ModelConfig fields of a Mixtral or Qwen3-MoE config.json."""
    if family == "mixtral":
        return dict(n_experts=hf["num_local_experts"], n_experts_per_tok=hf["num_experts_per_tok"],
                    norm_topk_prob=True)
    # Qwen3-MoE: files say num_experts; transformers 5 writes num_local_experts.
    n_experts = hf.get("num_experts", hf.get("num_local_experts"))
    if n_experts is None:
        raise KeyError("num_experts")
    step = hf.get("decoder_sparse_step", 1) or 1
    only_mlp = hf.get("mlp_only_layers") or []
    if not isinstance(only_mlp, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only_mlp):
        raise ValueError(f"mlp_only_layers must be a list of layer numbers, got {only_mlp!r:.80}")
    dense = tuple(i for i in range(hf["num_hidden_layers"]) if i in only_mlp or (i + 1) % step)
    return dict(n_experts=n_experts, n_experts_per_tok=hf["num_experts_per_tok"],
                moe_intermediate_size=hf["moe_intermediate_size"],
                norm_topk_prob=bool(hf.get("norm_topk_prob", False)), dense_layers=dense)


def stack_experts(state: dict[str, torch.Tensor], config: ModelConfig, path: Path | str) -> None:
    """Replace the per-expert pieces `...gate_exps.{e}` in `state` by stacked tensors, in place."""
    pieces: dict[str, dict[int, torch.Tensor]] = {}
    for name in [n for n in state if EXPERT_PIECE.fullmatch(n)]:
        m = EXPERT_PIECE.fullmatch(name)
        pieces.setdefault(m["stack"], {})[int(m["e"])] = state.pop(name)
    for stack, experts in pieces.items():
        if sorted(experts) != list(range(config.n_experts)):
            missing = sorted(set(range(config.n_experts)) - set(experts))
            extra = sorted(set(experts) - set(range(config.n_experts)))
            raise CorruptFileError(path, f"{stack}: experts {missing or extra} missing or beyond the "
                                         f"{config.n_experts} experts the config names")
        shapes = {tuple(t.shape) for t in experts.values()}
        if len(shapes) != 1:
            raise CorruptFileError(path, f"{stack}: the experts' tensors differ in shape {sorted(shapes)}")
        state[stack] = torch.stack([experts[e] for e in range(config.n_experts)])  # (E, out, in)


def unstack_experts(name: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Our stacked `layers.0.mlp.gate_exps` -> its per-expert pieces `layers.0.mlp.gate_exps.{e}`."""
    return [(f"{name}.{e}", tensor[e]) for e in range(tensor.shape[0])]


def families_a_config_fields(config: ModelConfig) -> dict[str, Any]:
    """config.json fields of Qwen3, Qwen3-MoE and Mixtral beyond the llama ones (for export);
    ValueError for a model the family's config cannot describe."""
    if config.qk_norm != (config.arch != "mixtral"):
        raise ValueError(f"{config.arch} {'always has' if config.arch != 'mixtral' else 'has no'} q/k norms")
    if bool(config.n_experts) != (config.arch != "qwen3"):
        raise ValueError(f"{config.arch} {'has no' if config.arch == 'qwen3' else 'needs'} experts")
    if config.arch == "qwen3":
        return {"use_sliding_window": False, "sliding_window": None}
    if config.arch == "mixtral":
        if config.dense_layers or not config.norm_topk_prob:
            raise ValueError("Mixtral has no dense layers and always renormalises its top-k weights")
        return {"num_local_experts": config.n_experts, "num_experts_per_tok": config.n_experts_per_tok,
                "intermediate_size": config.moe_intermediate_size}
    dense = list(config.dense_layers)
    return {"num_experts": config.n_experts, "num_experts_per_tok": config.n_experts_per_tok,
            "moe_intermediate_size": config.moe_intermediate_size, "norm_topk_prob": config.norm_topk_prob,
            "decoder_sparse_step": 1, "mlp_only_layers": dense, "use_sliding_window": False, "sliding_window": None}
