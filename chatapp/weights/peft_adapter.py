"""LoRA adapters in PEFT's format: adapter_config.json + adapter_model.safetensors.

A folder written here loads with `peft.PeftModel.from_pretrained` over the Hugging Face model
holding the same base weights, and a folder PEFT wrote loads here. Tensor names are PEFT's,
e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (the adapter name
"default" is not part of saved names). Our own notes (base model, data fingerprint,
evaluation results) go to chatapp_adapter.json beside them and, as strings, to the
safetensors metadata; PEFT ignores both.

Llama, Mistral and Qwen2 share one layout; GPT-2 fuses q/k/v into one Conv1D, which our
split q/k/v adapters cannot be written as, so it is refused.

Phi-3 fuses q/k/v (`qkv_proj`) and gate/up (`gate_up_proj`) in its Hugging Face layers, while our
adapters sit on the split layers: they are written there by rank stacking (weights/phi3.py,
`fuse_lora`): the fused module has rank n*r and alpha n*alpha (PEFT's `rank_pattern` and
`alpha_pattern`), keeping each part's alpha/r, and a part the user did not target is a zero block
(our chatapp_adapter.json keeps the real target list). Read back, the rows of A and the diagonal
blocks of B are split again; a fused B that is not block-diagonal (PEFT trained on the fused
layer itself) is refused with an error saying so, as our split layers cannot hold it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import CorruptFileError, MissingFileError, ShapeMismatchError, UnsupportedArchitectureError
from ..model.lora import LORA_TARGETS, LoRAConfig, apply_lora, has_lora, lora_layers, remove_lora
from ..model.quant import QuantLinear
from ..paths import atomic_write_files, read_json_object
from .hf_names import hf_name, our_name
from .phi3 import LORA_FUSED_GROUPS, LORA_PART_GROUP, fuse_lora, fused_lora_module, lora_part_rows, split_lora

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CHATAPP_FILE = "chatapp_adapter.json"
PEFT_PREFIX = "base_model.model."
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "gemma2", "gemma3", "smollm3", "phi3")
# Families whose Hugging Face layers fuse some of our LoRA targets (rank-stacked; module docstring).
FUSED_FAMILIES = ("phi3",)

# Target module names: ours and Hugging Face's coincide for the llama family; Phi-3's fused
# modules stand for several of ours.
TARGET_TO_HF = {name: name for name in LORA_TARGETS}
HF_TO_TARGETS: dict[str, tuple[str, ...]] = {**{hf: (ours,) for ours, hf in TARGET_TO_HF.items()},
                                             **LORA_FUSED_GROUPS}

PEFT_KEY = re.compile(r"base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight")


@dataclass
class AdapterInfo:
    folder: Path
    config: LoRAConfig
    base_model_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def _family(model: torch.nn.Module, folder: Path) -> str:
    arch = getattr(getattr(model, "config", None), "arch", None)
    if arch not in FAMILIES:
        raise UnsupportedArchitectureError(
            folder, f"LoRA adapters in PEFT format are supported for {', '.join(FAMILIES)}, not {arch!r}")
    return arch


def hf_module_name(ours: str, family: str = "llama") -> str:
    """`layers.0.attn.q_proj` -> `model.layers.0.self_attn.q_proj` (hf_names' table, read backwards)."""
    name = hf_name(ours + ".weight", family) if ours.rpartition(".")[2] in LORA_TARGETS else None
    if name is None:
        raise ValueError(f"{ours} is not a layer that a PEFT adapter of a {family} model can name")
    return name[: -len(".weight")]


def our_module_name(hf: str, family: str) -> Optional[str]:
    """`model.layers.0.self_attn.q_proj` -> `layers.0.attn.q_proj`; None when it is no layer of ours."""
    name = our_name(hf + ".weight", family)
    return name[: -len(".weight")] if name and name.endswith(".weight") else None


def _base_shape(model: torch.nn.Module) -> dict[str, Any]:
    c = model.config
    return {k: getattr(c, k) for k in ("arch", "vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads",
                                       "head_dim", "intermediate_size")}


def save_adapter(model: torch.nn.Module, lora_config: LoRAConfig, folder: PathLike,
                 base_model_name: str, metadata: Optional[dict[str, Any]] = None) -> Path:
    """Write `model`'s LoRA layers to `folder` in PEFT's format; returns the folder.

    `metadata` (JSON-serialisable: data fingerprint, evaluation results...) is kept in
    chatapp_adapter.json and in the safetensors metadata. The three files are written as a set
    (paths.atomic_write_files): a full disk leaves the folder's earlier adapter whole.
    """
    folder = Path(folder)
    family = _family(model, folder)
    metadata = dict(metadata or {})
    metadata_json = json.dumps(metadata, sort_keys=True)  # fails early on what JSON cannot hold
    layers = list(lora_layers(model))
    if not layers:
        raise ValueError("the model has no LoRA layers to save")
    tensors: dict[str, torch.Tensor] = {}
    fused: dict[tuple[str, str], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    for name, layer in layers:
        short = name.rpartition(".")[2]
        if short not in lora_config.target_modules:
            raise ValueError(f"LoRA layer {name} is not among the config's target modules {lora_config.target_modules}")
        if layer.r != lora_config.r:
            raise ValueError(f"LoRA layer {name} has rank {layer.r}, the config says {lora_config.r}")
        pair = (layer.lora_A.detach().to("cpu"), layer.lora_B.detach().to("cpu"))
        group = fused_lora_module(name) if family in FUSED_FAMILIES else None
        if group is not None:
            fused.setdefault(group, {})[name] = pair
            continue
        hf = PEFT_PREFIX + hf_module_name(name, family)
        tensors[f"{hf}.lora_A.weight"] = pair[0].contiguous()
        tensors[f"{hf}.lora_B.weight"] = pair[1].contiguous()
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    for (module, group), parts in fused.items():
        rows = lora_part_rows(module, model.config)
        in_features = next(iter(parts.values()))[0].shape[1]
        a, b = fuse_lora([parts.get(part) for part, _ in rows], [n for _, n in rows], lora_config.r, in_features)
        hf = PEFT_PREFIX + hf_name(module + ".weight", family)[: -len(".weight")]
        tensors[f"{hf}.lora_A.weight"], tensors[f"{hf}.lora_B.weight"] = a, b
        rank_pattern[group] = len(rows) * lora_config.r
        alpha_pattern[group] = _number(_fused_alpha(lora_config, len(rows)))

    peft_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name or None,
        "revision": None,
        "inference_mode": True,
        "r": lora_config.r,
        "lora_alpha": _number(lora_config.alpha),
        "lora_dropout": lora_config.dropout,
        "target_modules": sorted({LORA_PART_GROUP.get(t, t) if family in FUSED_FAMILIES else TARGET_TO_HF[t]
                                  for t in lora_config.target_modules}),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": lora_config.use_rslora,
        "use_dora": False,
        "lora_bias": False,
        "init_lora_weights": True,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
    }
    ours = {
        "format": "chatapp-lora-adapter",
        "version": 1,
        "family": family,
        "base_model": base_model_name,
        "base_shape": _base_shape(model),
        "lora": lora_config.to_dict(),
        "metadata": metadata,
    }
    st_metadata = {"format": "pt", "chatapp_base_model": base_model_name, "chatapp_metadata": metadata_json}
    atomic_write_files(folder, {  # all three or none: a full disk never mixes new weights with an old config
        WEIGHTS_FILE: safetensors_bytes(tensors, metadata=st_metadata),
        CHATAPP_FILE: (json.dumps(ours, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        CONFIG_FILE: (json.dumps(peft_config, indent=2, sort_keys=True) + "\n").encode("utf-8")})
    log.info("saved LoRA adapter (%d layers, r=%d) to %s", len(layers), lora_config.r, folder)
    return folder


def _number(value: float) -> Union[int, float]:
    return int(value) if float(value).is_integer() else value


def _fused_alpha(config: LoRAConfig, parts: int) -> float:
    """Alpha of a module stacking `parts` adapters of rank r, keeping each one's scaling."""
    rank = parts * config.r
    return config.scaling * (math.sqrt(rank) if config.use_rslora else rank)


def _lora_config_from_peft(peft: dict[str, Any], path: Path) -> LoRAConfig:
    """Our LoRAConfig for a PEFT adapter_config.json, refusing options we do not implement."""
    if peft.get("peft_type") != "LORA":
        raise UnsupportedArchitectureError(path, f"adapter type {peft.get('peft_type')!r} is not supported",
                                           "only LoRA adapters are")
    task = peft.get("task_type")
    if task not in (None, "CAUSAL_LM"):
        log.warning("%s: task_type %r, expected CAUSAL_LM", path, task)
    unsupported = {
        "use_dora": bool(peft.get("use_dora")),
        "lora_bias": bool(peft.get("lora_bias")),
        "fan_in_fan_out": bool(peft.get("fan_in_fan_out")),
        "bias": peft.get("bias", "none") != "none",
        "modules_to_save": bool(peft.get("modules_to_save")),
        # patterns only for the fused modules (rank stacking, see the module docstring)
        "rank_pattern": bool(set(peft.get("rank_pattern") or {}) - set(LORA_FUSED_GROUPS)),
        "alpha_pattern": bool(set(peft.get("alpha_pattern") or {}) - set(LORA_FUSED_GROUPS)),
        "layers_to_transform": peft.get("layers_to_transform") is not None,
        "layer_replication": bool(peft.get("layer_replication")),
        "trainable_token_indices": bool(peft.get("trainable_token_indices")),
        "target_parameters": bool(peft.get("target_parameters")),
    }
    used = [name for name, on in unsupported.items() if on]
    if used:
        raise UnsupportedArchitectureError(path, f"uses LoRA options this app does not implement: {', '.join(used)}")
    targets = peft.get("target_modules")
    if isinstance(targets, str):
        raise UnsupportedArchitectureError(path, f"target_modules is a pattern ({targets!r})",
                                           "only a list of module names is supported")
    if not isinstance(targets, list) or not targets:
        raise CorruptFileError(path, f"target_modules must be a non-empty list, got {targets!r}")
    unknown = sorted(t for t in targets if t not in HF_TO_TARGETS)
    if unknown:
        raise UnsupportedArchitectureError(path, f"unknown target modules {unknown}",
                                           f"supported: {', '.join(HF_TO_TARGETS)}")
    try:
        return LoRAConfig(r=peft["r"], alpha=peft["lora_alpha"], dropout=float(peft.get("lora_dropout", 0.0)),
                          target_modules=sorted({ours for t in targets for ours in HF_TO_TARGETS[t]}),
                          use_rslora=bool(peft.get("use_rslora", False)))
    except KeyError as exc:
        raise CorruptFileError(path, f"lacks the field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(path, str(exc)) from exc


def _check_files(folder: Path) -> None:
    if not folder.is_dir():
        raise MissingFileError(folder, "is not a folder")
    hint = "a LoRA adapter folder holds adapter_config.json and adapter_model.safetensors"
    if not (folder / CONFIG_FILE).is_file():
        raise MissingFileError(folder, f"has no {CONFIG_FILE}", hint)
    if not (folder / WEIGHTS_FILE).is_file():
        if (folder / "adapter_model.bin").is_file():
            hint = "adapter_model.bin is a pickle and is never read; save the adapter with safetensors"
        raise MissingFileError(folder, f"has no {WEIGHTS_FILE}", hint)


def read_adapter_info(folder: PathLike) -> AdapterInfo:
    """The adapter's LoRA config, base model name and our metadata, without loading tensors."""
    folder = Path(folder)
    _check_files(folder)
    peft = read_json_object(folder / CONFIG_FILE)
    config = _lora_config_from_peft(peft, folder / CONFIG_FILE)
    base = peft.get("base_model_name_or_path") or ""
    metadata: dict[str, Any] = {}
    if (folder / CHATAPP_FILE).is_file():
        ours = read_json_object(folder / CHATAPP_FILE)
        base = ours.get("base_model") or base
        metadata = ours.get("metadata") or {}
        # A fused module stands for all its parts; ours names those the user targeted (the
        # others are zero blocks, checked at load).
        chosen = (ours.get("lora") or {}).get("target_modules") if ours.get("family") in FUSED_FAMILIES else None
        if isinstance(chosen, list) and set(chosen) < set(config.target_modules):
            config = replace(config, target_modules=sorted(chosen))
    return AdapterInfo(folder=folder, config=config, base_model_name=base, metadata=metadata)


def adapter_parameter_count(folder: PathLike) -> int:
    """How many numbers the adapter's tensors hold (read from the safetensors header, no tensor
    loaded): its memory on a model is this times the element size it takes there."""
    path = Path(folder) / WEIGHTS_FILE
    _check_files(Path(folder))
    try:
        with safe_open(str(path), framework="pt") as f:
            return sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    except (SafetensorError, OSError) as exc:
        raise CorruptFileError(path, f"is not a readable safetensors file: {exc}") from exc


def _read_tensors(folder: Path, family: str) -> dict[str, dict[str, torch.Tensor]]:
    """{our module name: {"A": tensor, "B": tensor}} from adapter_model.safetensors."""
    path = folder / WEIGHTS_FILE
    found: dict[str, dict[str, torch.Tensor]] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                m = PEFT_KEY.fullmatch(key)
                module = our_module_name(m["module"], family) if m else None
                if module is None:
                    raise UnsupportedArchitectureError(
                        path, f"tensor {key} is not a LoRA weight of a {family} attention or MLP layer")
                found.setdefault(module, {})[m["which"]] = f.get_tensor(key)
    except (SafetensorError, OSError) as exc:
        raise CorruptFileError(path, f"is not a readable safetensors file: {exc}") from exc
    for module, pair in found.items():
        if set(pair) != {"A", "B"}:
            raise CorruptFileError(path, f"layer {module} has lora_{''.join(pair)} but not both lora_A and lora_B")
    return found


def load_adapter(model: torch.nn.Module, folder: PathLike, dtype: Optional[torch.dtype] = None) -> AdapterInfo:
    """Put the adapter in `folder` on `model` (replacing any adapter it has), enabled.

    Everything is checked before the model is touched: a bad folder leaves the model as it was.
    `dtype`: the adapter's dtype on the model, default the base weights' (float32 over compact
    int8 / int4 weights: the base product stays compact, the adapter's delta is added in float32).
    """
    folder = Path(folder)
    family = _family(model, folder)
    info = read_adapter_info(folder)
    config = info.config
    tensors = _read_tensors(folder, family)
    path = folder / WEIGHTS_FILE
    if family in FUSED_FAMILIES:
        tensors = _unfuse(tensors, model.config, read_json_object(folder / CONFIG_FILE), config, path)
    base_hint = f"was the adapter made for {info.base_model_name}?" if info.base_model_name else \
        "the adapter was made for another base model"

    # The layers apply_lora would wrap on this model (float Linears or compact QuantLinears),
    # with their (out, in) shapes.
    expected = {name: (module.out_features, module.in_features) for name, module in model.named_modules()
                if isinstance(module, (torch.nn.Linear, QuantLinear))
                and name.rpartition(".")[2] in config.target_modules}
    for name, layer in lora_layers(model):  # a model that already carries an adapter
        if name.rpartition(".")[2] in config.target_modules:
            expected[name] = (layer.out_features, layer.in_features)
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ShapeMismatchError(path, f"names layers the model does not have or that are not targets: "
                                       f"{', '.join(extra[:5])}", base_hint)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ShapeMismatchError(path, f"lacks weights for {', '.join(missing[:5])}"
                                       f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}", base_hint)
    for name, (out_f, in_f) in expected.items():
        a, b = tensors[name]["A"], tensors[name]["B"]
        if tuple(a.shape) != (config.r, in_f) or tuple(b.shape) != (out_f, config.r):
            raise ShapeMismatchError(path, f"layer {name}: lora_A {list(a.shape)} and lora_B {list(b.shape)} "
                                           f"do not fit a ({out_f}, {in_f}) weight at rank {config.r}", base_hint)
        if not (a.is_floating_point() and b.is_floating_point()):
            raise CorruptFileError(path, f"layer {name} has non-float LoRA weights")

    if has_lora(model):
        remove_lora(model)
    apply_lora(model, config, dtype=dtype)
    with torch.no_grad():
        for name, layer in lora_layers(model):
            layer.lora_A.copy_(tensors[name]["A"])
            layer.lora_B.copy_(tensors[name]["B"])
    log.info("loaded LoRA adapter (%d layers, r=%d) from %s", len(expected), config.r, folder)
    return info


def _unfuse(tensors: dict[str, dict[str, torch.Tensor]], model_config: Any, peft: dict[str, Any],
            config: LoRAConfig, path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Phi-3's fused qkv/gate_up adapters as adapters of our split layers (module docstring).

    Each part keeps its product exactly: B is rescaled from the fused module's alpha/rank to
    the config's. Parts outside config.target_modules must be zero blocks and are dropped.
    """
    hint = "merge it into the base weights with PEFT (merge_and_unload) and load the merged folder"
    out: dict[str, dict[str, torch.Tensor]] = {}
    for module, pair in tensors.items():
        group = next((g for g, part in (("qkv_proj", ".attn.qkv"), ("gate_up_proj", ".mlp.gate_up"))
                      if module.endswith(part)), None)
        if group is None:
            out[module] = pair
            continue
        rows = lora_part_rows(module, model_config)
        a, b = pair["A"], pair["B"]
        rank = (peft.get("rank_pattern") or {}).get(group, config.r)
        alpha = (peft.get("alpha_pattern") or {}).get(group, config.alpha)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0 \
                or isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise CorruptFileError(path.with_name(CONFIG_FILE), f"{group}: rank_pattern {rank!r} and alpha_pattern "
                                                                f"{alpha!r} must be positive numbers")
        if a.shape[0] != rank:
            raise ShapeMismatchError(path, f"layer {module}: lora_A has rank {a.shape[0]}, the config says {rank}")
        try:
            parts = split_lora(module, a, b, [n for _, n in rows])
        except ValueError as exc:
            raise UnsupportedArchitectureError(path, str(exc), hint) from exc
        if rank // len(rows) != config.r:
            raise UnsupportedArchitectureError(
                path, f"layer {module}: rank {rank // len(rows)} per part, the other layers {config.r}: our LoRA "
                      "has one rank for every layer", hint)
        ratio = alpha / (math.sqrt(rank) if config.use_rslora else rank) / config.scaling
        for (part, _), (part_a, part_b) in zip(rows, parts):
            if part.rpartition(".")[2] in config.target_modules:
                out[part] = {"A": part_a, "B": part_b * ratio if ratio != 1 else part_b}
            elif bool(part_a.ne(0).any()) and bool(part_b.ne(0).any()):
                raise CorruptFileError(path, f"layer {part} is not a target of the adapter, yet its block of "
                                             f"{module} is not zero")
    return out
