"""LoRA adapters in PEFT's format: adapter_config.json + adapter_model.safetensors.

A folder written here loads with `peft.PeftModel.from_pretrained` over the Hugging Face model
holding the same base weights, and a folder PEFT wrote loads here. Tensor names are PEFT's,
e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (the adapter name
"default" is not part of saved names). Our own notes (base model, data fingerprint,
evaluation results) go to chatapp_adapter.json beside them and, as strings, to the
safetensors metadata; PEFT ignores both.

Llama, Mistral and Qwen2 share one layout; GPT-2 fuses q/k/v into one Conv1D, which our
split q/k/v adapters cannot be written as, so it is refused.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import CorruptFileError, MissingFileError, ShapeMismatchError, UnsupportedArchitectureError
from ..model.lora import LORA_TARGETS, LoRAConfig, apply_lora, has_lora, lora_layers, remove_lora
from ..paths import atomic_write_files, read_json_object
from .hf_names import hf_name, our_name

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CHATAPP_FILE = "chatapp_adapter.json"
PEFT_PREFIX = "base_model.model."
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "gemma2", "gemma3", "smollm3")
# Families whose Hugging Face layers fuse some of our LoRA targets: an adapter of ours on the
# separate layers has no PEFT spelling there (see weights/phi3.py).
FUSED_FAMILIES = {"phi3": "its fused qkv_proj and gate_up_proj layers"}

# Target module names: ours and Hugging Face's coincide for the llama family.
TARGET_TO_HF = {name: name for name in LORA_TARGETS}
HF_TO_TARGET = {hf: ours for ours, hf in TARGET_TO_HF.items()}

PEFT_KEY = re.compile(r"base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight")


@dataclass
class AdapterInfo:
    folder: Path
    config: LoRAConfig
    base_model_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def _family(model: torch.nn.Module, folder: Path) -> str:
    arch = getattr(getattr(model, "config", None), "arch", None)
    if arch in FUSED_FAMILIES:
        raise UnsupportedArchitectureError(
            folder, f"LoRA adapters in PEFT format are not supported for {arch} models ({FUSED_FAMILIES[arch]} "
                    "have no PEFT names for our separate q/k/v and gate/up adapters)",
            "train with --method full (the whole model is then written as a Hugging Face folder)")
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
    for name, layer in layers:
        short = name.rpartition(".")[2]
        if short not in lora_config.target_modules:
            raise ValueError(f"LoRA layer {name} is not among the config's target modules {lora_config.target_modules}")
        if layer.r != lora_config.r:
            raise ValueError(f"LoRA layer {name} has rank {layer.r}, the config says {lora_config.r}")
        hf = PEFT_PREFIX + hf_module_name(name, family)
        tensors[f"{hf}.lora_A.weight"] = layer.lora_A.detach().to("cpu").contiguous()
        tensors[f"{hf}.lora_B.weight"] = layer.lora_B.detach().to("cpu").contiguous()

    peft_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name or None,
        "revision": None,
        "inference_mode": True,
        "r": lora_config.r,
        "lora_alpha": int(lora_config.alpha) if float(lora_config.alpha).is_integer() else lora_config.alpha,
        "lora_dropout": lora_config.dropout,
        "target_modules": sorted(TARGET_TO_HF[t] for t in lora_config.target_modules),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": lora_config.use_rslora,
        "use_dora": False,
        "lora_bias": False,
        "init_lora_weights": True,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
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
        "rank_pattern": bool(peft.get("rank_pattern")),
        "alpha_pattern": bool(peft.get("alpha_pattern")),
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
    unknown = sorted(t for t in targets if t not in HF_TO_TARGET)
    if unknown:
        raise UnsupportedArchitectureError(path, f"unknown target modules {unknown}",
                                           f"supported: {', '.join(HF_TO_TARGET)}")
    try:
        return LoRAConfig(r=peft["r"], alpha=peft["lora_alpha"], dropout=float(peft.get("lora_dropout", 0.0)),
                          target_modules=sorted({HF_TO_TARGET[t] for t in targets}),
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
    return AdapterInfo(folder=folder, config=config, base_model_name=base, metadata=metadata)


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
    `dtype`: the adapter's dtype on the model, default the base weights'.
    """
    folder = Path(folder)
    family = _family(model, folder)
    info = read_adapter_info(folder)
    config = info.config
    tensors = _read_tensors(folder, family)
    path = folder / WEIGHTS_FILE
    base_hint = f"was the adapter made for {info.base_model_name}?" if info.base_model_name else \
        "the adapter was made for another base model"

    # The layers apply_lora would wrap on this model, with their (out, in) shapes.
    expected = {name: tuple(module.weight.shape) for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear) and name.rpartition(".")[2] in config.target_modules}
    for name, layer in lora_layers(model):  # a model that already carries an adapter
        if name.rpartition(".")[2] in config.target_modules:
            expected[name] = tuple(layer.weight.shape)
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
