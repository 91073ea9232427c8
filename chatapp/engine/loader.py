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

from ..errors import MissingFileError, ModelLoadError
from ..model.config import ModelConfig
from ..model.transformer import Transformer
from ..paths import default_model_path
from ..text import Tokenizer
from ..weights.build import build_model
from ..weights.heap import HeapTrimmer, trim_heap
from ..weights.discovery import detect_model_kind
from ..weights.gguf_config import gguf_sampling_defaults
from ..weights.gguf_loader import gguf_config, load_gguf_state_dict, open_gguf
from ..weights.hf_loader import hf_sampling_defaults, load_hf_folder, read_hf_config
from ..weights.peft_adapter import adapter_parameter_count, load_adapter
from ..model.decode_step import DecodeStep
from ..model.quant import needs_products, set_products, use_int4_rows, use_int8_rows, warm_up_products
from .device import available_memory, check_fits, choose_device
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
                   weights: str = "auto", adapter: str | Path | None = None) -> dict:
    """What loading `spec` (wearing the LoRA adapter folder `adapter`, if given) would need, from
    its config alone (no weights read).

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
    try:
        extra = _adapter_params(adapter)
    except ModelLoadError as exc:  # an estimate still helps; the load says what is wrong with it
        log.warning("the adapter is left out of the estimate: %s", exc)
        extra = 0
    source = "gguf" if kind in ("gguf", "default") else kind
    choice = choose_weights(weights, config, context, target, free, adapter_params=extra, source=source)
    estimate = estimate_for_option(config, context, choice.option, adapter_params=extra, device_type=target.type,
                                   source=source)
    name = DEFAULT_MODEL_NAME if str(spec) == "default" else (config.name or path.name)
    return {"name": name, "n_params": config.n_params, "context_len": context, "device": str(target),
            "dtype": str(choice.dtype).replace("torch.", ""), "memory": estimate.describe(),
            "memory_bytes": estimate.total_bytes, "memory_parts": estimate.parts(), "free_bytes": free,
            "fits": free is None or estimate.total_bytes <= free, "weights": choice.option,
            "weights_reason": choice.reason, "fit": fit_word(estimate.total_bytes, free),
            "options": fit_table(config, context, free, adapter_params=extra, device_type=target.type,
                                 source=source),
            "auto_weights": choose_weights("auto", config, context, target, free, adapter_params=extra,
                                           source=source).option}


def _forced_mode(variable: str, default: str) -> str:
    """"eager" / "compiled" when the environment variable says 0 / 1, else `default`."""
    return {"0": "eager", "1": "compiled"}.get(os.environ.get(variable, ""), default)


def products_mode(device: torch.device) -> str:
    """The compact products a load on `device` uses by default: "auto" (compiled where the C++
    compiler probe passes) on the CPU; "eager" elsewhere: the probe compiles for the CPU and says
    nothing of a GPU's compiler (triton), so a CUDA model dequantizes on the fly on the device
    (chunks of rows, then cuBLAS) unless CHATAPP_QUANT_COMPILE=1 asks for compiled products."""
    return "auto" if device.type == "cpu" else "eager"


def _adapter_params(adapter: str | Path | None) -> int:
    """The numbers a LoRA adapter folder holds (0 for none): the estimate counts them. Raises the
    adapter reader's errors (a missing folder or file) before any weight is read."""
    return adapter_parameter_count(Path(adapter).expanduser()) if adapter else 0


def load_model(spec: str | Path, device: str = "auto", dtype: Optional[torch.dtype] = None,
               context_len: Optional[int] = None, progress: LoadProgress = None,
               check_memory: bool = True, adapter: str | Path | None = None,
               weights: str = "auto", decode_step: str = "auto", int8_rows: bool = True) -> LoadedModel:
    """Load the model `spec` names; `adapter`: a LoRA adapter folder (PEFT layout) put on it, enabled.

    weights: an engine.weights_option.WEIGHT_OPTIONS value; an explicit `dtype` overrides a
    float option (callers that predate the option pass dtype), never int8 / int4.
    int8_rows: int8 weights on the CPU requantized per row for torch's int8 kernel
    (model/int8_rows.py; CHATAPP_INT8_PACK=0 keeps the Q8_0 form).
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
    # An adapter goes on any weights: over int8 / int4 the base products stay compact and the
    # adapter's low-rank delta is added in float32 (model/lora.py); counted in the estimate.
    extra = _adapter_params(adapter)
    source = "gguf" if reader is not None else kind
    choice = choose_weights(weights, config, context, target, available_memory(target), adapter_params=extra,
                            source=source)
    dtype, compact = choice.dtype, choice.compact
    log.info("%s: %s", config.name or path.name, choice.reason)
    if check_memory:
        check_fits(estimate_for_option(config, context, choice.option, adapter_params=extra,
                                       device_type=target.type, source=source), target, config.name or path.name)

    def weights_progress(done: int, total: int) -> None:
        report("weights", done / total if total else 0.0)

    if reader is not None:
        state = load_gguf_state_dict(reader, config, path, dtype=dtype, progress=weights_progress, compact=compact)
        report("tokenizer", 0.0)
        tokenizer = Tokenizer.from_gguf(path, reader=reader)
        recommended = gguf_sampling_defaults(reader, path)
    else:
        # compact: each tensor quantized as it is read, never the whole model in float32
        config, state = load_hf_folder(path, dtype=dtype, progress=weights_progress, compact=compact)
        report("tokenizer", 0.0)
        tokenizer = Tokenizer.from_hf_folder(path)
        recommended = hf_sampling_defaults(path)
    model = build_model(config, state, device=target)
    del state
    trim_heap()
    if compact is not None and int8_rows and target.type == "cpu":
        trimmer = HeapTrimmer()
        rowwise = use_int8_rows(model, freed=trimmer.freed_bytes)
        trim_heap()  # the Q8_0 parts are gone: glibc keeps their pages unless asked
        log.info("int8 weights with a scale per row for torch's int8 kernel: %d", rowwise)
    if compact is not None and target.type == "cpu":
        # Q4_1 codes repacked in place for torch's int4 kernel (model/int4_rows.py;
        # CHATAPP_INT4_PACK=0 keeps the Q4_1 form)
        trimmer = HeapTrimmer()
        packed = use_int4_rows(model, freed=trimmer.freed_bytes)
        trim_heap()
        if packed:
            log.info("int4 weights in torch's int4 kernel layout: %d", packed)
    if compact is not None and needs_products(model):
        # torch.compile'd one-row products where a compiler works (chatapp/model/quant_products.py);
        # CHATAPP_QUANT_COMPILE=0 / 1 forces eager / compiled. Each weight shape compiles now.
        # Weights all in torch's int8/int4 kernel forms need none: no compiler probe (its memory
        # and seconds), which is what the memory estimate counts for them.
        mode = _forced_mode("CHATAPP_QUANT_COMPILE", products_mode(target))
        products = set_products(mode)
        shapes = warm_up_products(model, progress=lambda done, total: report("compile", done / total))
        log.info("compact products: %s%s", products, f" ({shapes} weight shapes compiled)" if shapes else "")
    # The one-token decode step compiled as one graph where a compiler works (model/decode_step.py);
    # CHATAPP_DECODE_COMPILE=0 / 1 forces eager / compiled. It compiles now, on the engine's cache.
    # `decode_step="eager"`: callers that decode little or nothing (training) skip the compile.
    model.decode_step = DecodeStep(model, _forced_mode("CHATAPP_DECODE_COMPILE", decode_step))
    if adapter is not None:  # put on first: the step compiles with it (its weights are inputs of the graph)
        report("adapter", 0.0)
        info = load_adapter(model, Path(adapter).expanduser())
        log.info("adapter %s (r=%d, base %s) on %s", adapter, info.config.r, info.base_model_name or "?",
                 config.name or path.name)
    if model.decode_step.compiled:
        report("compile", 0.0)
        model.setup_cache(1, context)  # the engine's cache has these shapes: no second compile
        model.decode_step.warm_up()
    report("ready", 1.0)
    elapsed = time.perf_counter() - start
    log.info("loaded %s (%s) on %s in %.1f s", config.name or path.name, kind, target, elapsed)
    # The bundled model's metadata name is a training-run label; show the product name.
    name = DEFAULT_MODEL_NAME if str(spec) == "default" else (config.name or path.name)
    return LoadedModel(name=name, path=path, kind=kind, config=config, model=model,
                       tokenizer=tokenizer, device=target, dtype=dtype, load_s=elapsed,
                       adapter=Path(adapter).expanduser() if adapter is not None else None,
                       sampling_defaults=recommended, weights=choice.option, weights_reason=choice.reason)
