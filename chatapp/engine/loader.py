"""Open a model by name or path: config, memory check, weights, tokenizer, on a device.

MODEL is "default" (the bundled SmolLM2), a .gguf file, or a Hugging Face folder.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..errors import MissingFileError
from ..model.config import ModelConfig
from ..model.transformer import Transformer
from ..paths import default_model_path
from ..text import Tokenizer
from ..weights.build import build_model
from ..weights.heap import trim_heap
from ..weights.discovery import detect_model_kind
from ..weights.gguf_config import gguf_sampling_defaults
from ..weights.gguf_loader import gguf_config, load_gguf_state_dict, open_gguf
from ..weights.hf_loader import hf_sampling_defaults, load_hf_folder, read_hf_config
from ..weights.peft_adapter import load_adapter
from ..model.decode_step import DecodeStep
from ..model.quant import quantize_state, set_products, warm_up_products
from .device import DeviceError, available_memory, check_fits, choose_device
from .weights_option import (FLOAT_DTYPES, check_option, choose_weights, estimate_for_option, fit_table,
                             fit_word)

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"

# (stage, fraction done in [0, 1]); stages: "config", "weights", "tokenizer", "adapter", "ready"
LoadProgress = Optional[Callable[[str, float], None]]


@dataclass
class LoadedModel:
    name: str
    path: Path
    kind: str  # "gguf" or "hf-folder"
    config: ModelConfig
    model: Transformer
    tokenizer: Tokenizer
    device: torch.device
    dtype: torch.dtype
    load_s: float
    adapter: Optional[Path] = None  # the LoRA adapter folder applied, if any
    weights: str = "float32"  # the weights option used (never "auto"), see engine.weights_option
    weights_reason: str = ""  # why: "as asked", or what auto picked and why
    # The sampling settings the model file recommends (chatapp.sampling_settings.RECOMMENDABLE).
    sampling_defaults: dict = field(default_factory=dict)


def resolve_model(spec: str | Path) -> Path:
    """The path a model spec names ("default" is the bundled model)."""
    if str(spec) == "default":
        return default_model_path()
    path = Path(spec).expanduser()
    if not path.exists():
        raise MissingFileError(path, "does not exist", "give a .gguf file, a model folder, or 'default'")
    return path


def estimate_model(spec: str | Path, device: str = "auto", context_len: Optional[int] = None,
                   weights: str = "auto") -> dict:
    """What loading `spec` would need, from its config alone (no weights read).

    Returns {"name", "n_params", "context_len", "device", "dtype", "memory", "memory_bytes",
    "free_bytes", "fits", "weights", "weights_reason", "fit", "options", "auto_weights"}:
    "weights" is the option `weights` resolves to, "fit" "fits" / "tight" / "does not fit",
    "options" the bytes and fit of every weights option (weights_option.fit_table),
    "auto_weights" what "auto" would pick. Raises the loaders' errors for a file that cannot
    be a model.
    """
    path = resolve_model(spec)
    kind = detect_model_kind(path)
    target = choose_device(device)
    if kind in ("gguf", "default"):
        config = gguf_config(open_gguf(path), path)
    else:
        _family, config = read_hf_config(path)
    context = min(context_len or config.max_seq_len, config.max_seq_len)
    free = available_memory(target)
    choice = choose_weights(weights, config, context, target, free)
    estimate = estimate_for_option(config, context, choice.option)
    name = DEFAULT_MODEL_NAME if str(spec) == "default" else (config.name or path.name)
    return {"name": name, "n_params": config.n_params, "context_len": context, "device": str(target),
            "dtype": str(choice.dtype).replace("torch.", ""), "memory": estimate.describe(),
            "memory_bytes": estimate.total_bytes, "memory_parts": estimate.parts(), "free_bytes": free,
            "fits": free is None or estimate.total_bytes <= free, "weights": choice.option,
            "weights_reason": choice.reason, "fit": fit_word(estimate.total_bytes, free),
            "options": fit_table(config, context, free),
            "auto_weights": choose_weights("auto", config, context, target, free).option}


def load_model(spec: str | Path, device: str = "auto", dtype: Optional[torch.dtype] = None,
               context_len: Optional[int] = None, progress: LoadProgress = None,
               check_memory: bool = True, adapter: str | Path | None = None,
               weights: str = "auto") -> LoadedModel:
    """Load the model `spec` names; `adapter`: a LoRA adapter folder (PEFT layout) put on it, enabled.

    weights: an engine.weights_option.WEIGHT_OPTIONS value; an explicit `dtype` overrides a
    float option (callers that predate the option pass dtype), never int8 / int4.
    """
    start = time.perf_counter()
    report = progress or (lambda stage, fraction: None)
    path = resolve_model(spec)
    kind = detect_model_kind(path)
    target = choose_device(device)
    check_option(weights)
    if dtype is not None and weights == "auto":
        weights = {v: k for k, v in FLOAT_DTYPES.items()}.get(dtype, "auto")
    report("config", 0.0)

    if kind in ("gguf", "default"):
        kind = "gguf"
        reader = open_gguf(path)
        config = gguf_config(reader, path)
    else:
        reader = None
        _family, config = read_hf_config(path)
    context = min(context_len or config.max_seq_len, config.max_seq_len)
    choice = choose_weights(weights, config, context, target, available_memory(target))
    dtype, compact = choice.dtype, choice.compact
    if compact is not None and adapter is not None:
        raise DeviceError(f"a LoRA adapter needs float weights, not {compact}: load with --weights float32 "
                          "(or bf16 / float16)" + (" (auto picked it: the model does not fit in float32)"
                                                   if weights == "auto" else ""))
    log.info("%s: %s", config.name or path.name, choice.reason)
    if check_memory:
        check_fits(estimate_for_option(config, context, choice.option), target, config.name or path.name)

    def weights_progress(done: int, total: int) -> None:
        report("weights", done / total if total else 0.0)

    if reader is not None:
        state = load_gguf_state_dict(reader, config, path, dtype=dtype, progress=weights_progress, compact=compact)
        report("tokenizer", 0.0)
        tokenizer = Tokenizer.from_gguf(path, reader=reader)
        recommended = gguf_sampling_defaults(reader, path)
    else:
        config, state = load_hf_folder(path, dtype=dtype, progress=weights_progress)
        if compact is not None:
            state = quantize_state(state, compact)
        report("tokenizer", 0.0)
        tokenizer = Tokenizer.from_hf_folder(path)
        recommended = hf_sampling_defaults(path)
    model = build_model(config, state, device=target)
    del state
    trim_heap()
    if compact is not None:
        # torch.compile'd one-row products where a compiler works (chatapp/model/quant_products.py);
        # CHATAPP_QUANT_COMPILE=0 / 1 forces eager / compiled. Each weight shape compiles now.
        mode = {"0": "eager", "1": "compiled"}.get(os.environ.get("CHATAPP_QUANT_COMPILE", ""), "auto")
        products = set_products(mode)
        shapes = warm_up_products(model, progress=lambda done, total: report("compile", done / total))
        log.info("compact products: %s%s", products, f" ({shapes} weight shapes compiled)" if shapes else "")
    # The one-token decode step compiled as one graph where a compiler works (model/decode_step.py);
    # CHATAPP_DECODE_COMPILE=0 / 1 forces eager / compiled. It compiles now, on the engine's cache.
    step_mode = {"0": "eager", "1": "compiled"}.get(os.environ.get("CHATAPP_DECODE_COMPILE", ""), "auto")
    model.decode_step = DecodeStep(model, step_mode)
    if model.decode_step.compiled and adapter is None:
        report("compile", 0.0)
        model.setup_cache(1, context)  # the engine's cache has these shapes: no second compile
        model.decode_step.warm_up()
    if adapter is not None:
        report("adapter", 0.0)
        info = load_adapter(model, Path(adapter).expanduser())
        log.info("adapter %s (r=%d, base %s) on %s", adapter, info.config.r, info.base_model_name or "?",
                 config.name or path.name)
    report("ready", 1.0)
    elapsed = time.perf_counter() - start
    log.info("loaded %s (%s) on %s in %.1f s", config.name or path.name, kind, target, elapsed)
    # The bundled model's metadata name is a training-run label; show the product name.
    name = DEFAULT_MODEL_NAME if str(spec) == "default" else (config.name or path.name)
    return LoadedModel(name=name, path=path, kind=kind, config=config, model=model,
                       tokenizer=tokenizer, device=target, dtype=dtype, load_s=elapsed,
                       adapter=Path(adapter).expanduser() if adapter is not None else None,
                       sampling_defaults=recommended, weights=choice.option, weights_reason=choice.reason)
