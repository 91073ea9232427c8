"""Hugging Face model folders: config.json + safetensors (single file or sharded), memory-mapped.

Weights are read only from safetensors: never pickle, never torch.load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from safetensors import SafetensorError, safe_open

from ..errors import CorruptFileError, MissingFileError, UnsupportedArchitectureError
from ..model.config import ConfigError, ModelConfig
from ..model.quant import GROUP, QuantizedTensor, float_target_kind, quantizable
from ..paths import read_json_object
from ..sampling_settings import checked_recommendations
from .experts import stack_experts
from .heap import HeapTrimmer, trim_heap
from .hf_names import CONFIG_BUILDERS, family_of, is_conv1d_weight, our_name
from .phi3 import is_fused, split_fused
from .validate import check_state_dict

log = logging.getLogger(__name__)

Progress = Optional[Callable[[int, int], None]]  # (done, total) tensors


def read_hf_config(folder: Path) -> tuple[str, ModelConfig]:
    """Parse folder/config.json into (family, ModelConfig)."""
    path = folder / "config.json"
    if not folder.is_dir():
        raise MissingFileError(folder, "is not a folder")
    if not path.is_file():
        raise MissingFileError(folder, "has no config.json",
                               "a Hugging Face model folder needs config.json, *.safetensors and tokenizer.json")
    hf = read_json_object(path, max_bytes=CONFIG_MAX_BYTES)
    check_config_types(hf, path)
    family = family_of(hf, path)
    try:
        config = CONFIG_BUILDERS[family](hf)
    except KeyError as exc:
        raise CorruptFileError(path, f"lacks the field {exc.args[0]!r} that a {family} config needs") from exc
    except ValueError as exc:  # ConfigError included
        kind = CorruptFileError if isinstance(exc, ConfigError) else UnsupportedArchitectureError
        raise kind(path, str(exc)) from exc
    except (TypeError, AttributeError, OverflowError) as exc:  # a type check_config_types does not know
        raise CorruptFileError(path, f"has a field of the wrong type ({exc})") from exc
    if not config.name:
        config.name = folder.name
    return family, config


CONFIG_MAX_BYTES = 1 << 20  # real config.json files are 1-5 KB
# Sizes beyond this are not a model this app could hold (and would be allocated before a check).
CONFIG_MAX_SIZE = 1 << 24

# The config.json fields the builders read, by the type they must have (None allowed for the
# optional ones): checked before building, so `"hidden_size": "64"` is one line naming the field.
_WHOLE = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size",
          "n_embd", "n_head", "n_layer", "n_positions", "n_inner", "num_key_value_heads", "head_dim",
          "max_position_embeddings", "sliding_window", "num_experts", "num_local_experts", "num_experts_per_tok",
          "moe_intermediate_size", "decoder_sparse_step", "sliding_window_pattern", "original_max_position_embeddings",
          "no_rope_layer_interval")
_REAL = ("rms_norm_eps", "layer_norm_epsilon", "rope_theta", "query_pre_attn_scalar", "attn_logit_softcapping",
         "final_logit_softcapping", "rope_local_base_freq", "partial_rotary_factor")
_FLAGS = ("attention_bias", "mlp_bias", "tie_word_embeddings", "use_sliding_window", "scale_attn_weights",
          "norm_topk_prob", "use_bidirectional_attention")
_TEXT = ("model_type", "hidden_act", "activation_function", "_name_or_path", "hidden_activation")
_OBJECTS = ("rope_parameters", "rope_scaling")


def check_config_types(hf: dict[str, Any], path: Path) -> None:
    """CorruptFileError naming `path` and the field when a field the builders read has the wrong type
    or an impossible size."""
    def bad(key: str, what: str) -> CorruptFileError:
        return CorruptFileError(path, f"field {key!r} must be {what}, got {hf[key]!r:.80}")

    for key in _WHOLE:
        value = hf.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad(key, "a whole number")
        if not 0 <= value <= CONFIG_MAX_SIZE:
            raise bad(key, f"between 0 and {CONFIG_MAX_SIZE:,}")
    for key in _REAL:
        value = hf.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise bad(key, "a number")
    for key in _FLAGS:
        if hf.get(key) is not None and not isinstance(hf[key], bool):
            raise bad(key, "true or false")
    for key in _TEXT:
        if hf.get(key) is not None and not isinstance(hf[key], str):
            raise bad(key, "text")
    for key in _OBJECTS:
        if hf.get(key) is not None and not isinstance(hf[key], dict):
            raise bad(key, "an object")
    if hf.get("layer_types") is not None and not isinstance(hf["layer_types"], list):
        raise bad("layer_types", "a list")


# generation_config.json keys -> our setting names (transformers' defaults apply to absent keys).
HF_SAMPLING_KEYS = {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p", "min_p": "min_p",
                    "repetition_penalty": "repetition_penalty"}


def hf_sampling_defaults(folder: Path) -> dict[str, Any]:
    """The sampling settings folder/generation_config.json recommends, valid ones only; {} without
    the file. Its explicit `"do_sample": false` means transformers decodes greedily: temperature 0."""
    path = Path(folder) / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        data = read_json_object(path)
    except CorruptFileError as exc:  # the weights may still be fine: load with our defaults
        log.warning("%s", exc)
        return {}
    found = {ours: data[key] for key, ours in HF_SAMPLING_KEYS.items() if data.get(key) is not None}
    if data.get("do_sample") is False:
        found["temperature"] = 0.0
    return checked_recommendations(found, str(path))


def safetensors_files(folder: Path) -> list[Path]:
    """The weight files of a folder: the index's shards, model.safetensors, or every *.safetensors."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_object(index, max_bytes=INDEX_MAX_BYTES).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CorruptFileError(index, "is not a valid safetensors index: 'weight_map' must map "
                                          "tensor names to file names")
        files = [_inside(folder, index, name) for name in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise MissingFileError(f, "is named in model.safetensors.index.json but does not exist",
                                       "the download is incomplete")
        return files
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise MissingFileError(folder, "has no *.safetensors weights",
                               "only safetensors are read; convert .bin/.pt checkpoints first")
    return files


INDEX_MAX_BYTES = 16 << 20  # the largest real shard indexes are ~100 KB


def _inside(folder: Path, index: Path, name: str) -> Path:
    """folder/name for a shard the index names; CorruptFileError when the name leaves the folder
    (an absolute path, a drive, `..`). Symlinks are not resolved: the hub cache's snapshot files
    are symlinks to its blobs folder, and a symlink was put there by whoever owns the folder."""
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or Path(name).drive or ".." in parts or "\0" in name:
        raise CorruptFileError(index, f"names the shard {name[:200]!r}, outside the model folder",
                               "a shard index may name only files inside its folder")
    return folder / name


def _open(path: Path):
    try:
        return safe_open(str(path), framework="pt")  # memory-maps the file
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CorruptFileError(path, f"is not a readable safetensors file: {exc}") from exc


def _get(f, path: Path, name: str) -> torch.Tensor:
    try:
        return f.get_tensor(name)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CorruptFileError(path, f"tensor {name} cannot be read: {exc}") from exc


def _tensors(files: list[Path], progress: Progress,
             one_at_a_time: bool = False) -> Iterator[tuple[Path, str, torch.Tensor]]:
    """Yield every tensor of every file, one at a time, reporting (done, total).

    The tensors are views of the memory-mapped file, whose pages stay resident once touched
    while the file is open. `one_at_a_time` opens the file for each tensor and closes it before
    the next (the caller must not keep the tensor itself, only what it made from it), so a load
    that quantizes never has more than one tensor's pages of the file resident."""
    keys = {}
    for path in files:
        with _open(path) as f:
            keys[path] = list(f.keys())
    total, done = sum(map(len, keys.values())), 0
    for path, names in keys.items():
        if one_at_a_time:
            for name in names:
                with _open(path) as f:
                    tensor = _get(f, path, name)
                yield path, name, tensor
                del tensor  # the last reference to the file's map: its pages leave the process
                done += 1
                if progress:
                    progress(done, total)
            continue
        with _open(path) as f:
            for name in names:
                yield path, name, _get(f, path, name)
                done += 1
                if progress:
                    progress(done, total)


# Floats converted and quantized at once: 4M (16 MB), so a large matrix (a vocabulary) never
# has float32 temporaries of its whole size beside it.
QUANTIZE_CHUNK_ELEMENTS = 1 << 20


def quantize_in_chunks(tensor: torch.Tensor, kind: str) -> QuantizedTensor:
    """QuantizedTensor.from_float(tensor.float(), kind), done a block of rows at a time (each
    group of 32 lies within a row, so the result is the same, bit for bit)."""
    rows, cols = tensor.shape
    step = max(1, QUANTIZE_CHUNK_ELEMENTS // cols)
    first = QuantizedTensor.from_float(tensor[:step].float(), kind)
    if step >= rows:
        return first
    parts = [t for t in (first.qweight, first.scales, first.mins) if t is not None]
    whole = [torch.empty((rows, *p.shape[1:]), dtype=p.dtype) for p in parts]  # (rows, ...) each
    for out, part in zip(whole, parts):
        out[:step] = part
    del first, parts
    for i in range(step, rows, step):
        chunk = QuantizedTensor.from_float(tensor[i:i + step].float(), kind)
        for out, part in zip(whole, (chunk.qweight, chunk.scales, chunk.mins)):
            out[i:i + step] = part
    return QuantizedTensor(kind, *whole)


def load_hf_folder(folder: Path | str, dtype: torch.dtype = torch.float32, progress: Progress = None,
                   compact: Optional[str] = None) -> tuple[ModelConfig, dict[str, Any]]:
    """Read a Hugging Face folder into (config, state dict in our names, `dtype`).

    Each tensor is read with the file open for it alone and copied out of the file's map, so a
    load never keeps the file's pages resident beside the weights. (Zero-copy views of the map
    kept the whole float32 file resident while the engine copied each weight column-major: the
    bundled model's float32 folder peaked at 1231 MiB against 789 estimated; benchmarks/memory_fit.py.)

    compact: "int8" or "int4" keeps weight matrices compact (chatapp.model.quant QuantizedTensor
    values, quant.float_target_kind), each quantized as it is read, a block of rows at a time:
    the load holds the compact weights plus one tensor of the file, never the model in float32.
    Norms, biases and experts stay `dtype`.
    """
    folder = Path(folder)
    family, config = read_hf_config(folder)
    files = safetensors_files(folder)
    state: dict[str, Any] = {}
    trimmer = HeapTrimmer()  # float copies freed between compact tensors: see weights/heap.py

    kept_float: list[str] = []

    def keep(name: str, tensor: torch.Tensor) -> None:
        """`tensor` (as the file holds it, or already `dtype` when not compact) into `state`."""
        if compact is None:
            state[name] = tensor
        elif quantizable(name, tuple(tensor.shape)):
            state[name] = quantize_in_chunks(tensor, float_target_kind(compact, name))
            trimmer.freed_bytes(4 * tensor.numel())
        else:  # norms, biases, experts: a copy, so no reference keeps the file's map (and its pages)
            state[name] = tensor.to(dtype, copy=True)
            if tensor.dim() == 2 and name.endswith(".weight") and name != "pos_embeddings.weight":
                kept_float.append(name)

    def take(path: Path, hf_name: str, tensor: torch.Tensor) -> None:
        """One tensor of the file into `state` (its locals, the float copies, die on return)."""
        name = our_name(hf_name, family)
        if name is None:
            return
        if name == "":
            log.warning("%s: ignoring unknown tensor %s", path, hf_name)
            return
        if not tensor.is_floating_point():
            raise CorruptFileError(path, f"tensor {hf_name} has non-float dtype {tensor.dtype}")
        if config.tie_embeddings and name == "lm_head.weight":
            return  # shares tok_embeddings.weight
        if compact is None:  # a copy, converted (compact: keep converts, a chunk of rows at a time)
            tensor = tensor.to(dtype, copy=True)
        if family == "gpt2":
            if is_conv1d_weight(name, family):
                tensor = tensor.t().contiguous()  # Conv1D stores (in, out); nn.Linear wants (out, in)
            if ".attn.qkv." in name:
                # (3*dim, dim) or (3*dim,) -> q, k, v along the output dimension
                if tensor.shape[0] != 3 * config.dim:
                    raise CorruptFileError(folder, f"fused qkv tensor {name} has shape {list(tensor.shape)}, "
                                                   f"expected first dimension {3 * config.dim}")
                for part, value in zip("qkv", tensor.split(config.dim, dim=0)):
                    keep(name.replace(".attn.qkv.", f".attn.{part}_proj."), value.contiguous())
                return
        if family == "phi3" and is_fused(name):  # Phi-3's qkv_proj and gate_up_proj
            try:
                parts = split_fused(name, tensor, config)
            except ValueError as exc:
                raise CorruptFileError(path, str(exc)) from exc
            for part, value in parts.items():
                keep(part, value)
            return
        keep(name, tensor)

    for item in _tensors(files, progress, one_at_a_time=True):
        take(*item)
        del item  # before the next tensor is read: one at a time
    if config.n_experts:
        stack_experts(state, config, folder)
    if kept_float:
        log.info("kept %d matrices in float (inputs not a multiple of %d): %s", len(kept_float), GROUP,
                 ", ".join(kept_float[:3]))
    check_state_dict(config, state, folder)
    trim_heap()
    log.info("loaded %d tensors from %s%s", len(state), folder, f" as {compact}" if compact else "")
    return config, state
