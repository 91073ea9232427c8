"""The weights option (`--weights auto|float32|bf16|float16|int8|int4`): what each costs in
memory, whether it fits this machine, and what `auto` picks.

float32 / bf16 / float16 hold every weight in that dtype; int8 and int4 hold weight matrices
compact (chatapp.model.quant: 34 and 20 bytes per 32 weights, norms and biases float32; with
int4 the embedding and vocabulary projection stay int8 unless the file has them in 4 bits). On
the CPU int8 holds a scale per row (model/int8_rows.py: 1 byte a weight + 2 a row), and int4
torch's int4 kernel layout (model/int4_rows.py: Q4_1's 20 bytes a 32, its int8 vocabulary per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..model.config import ModelConfig
from ..model.decode_step import compiled_step_expected
from ..model.quant_products import compiled_products_expected
from .device import MemoryEstimate, estimate_memory

WEIGHT_OPTIONS = ("auto", "float32", "bf16", "float16", "int8", "int4")
FLOAT_DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "float16": torch.float16}
BYTES_PER_WEIGHT = {"int8": 34 / 32, "int4": 20 / 32}
# Fits: the estimate takes at most this share of free memory (the rest of the system keeps
# room); tight: it fits, but beyond that share; does not fit: more than is free.
COMFORTABLE_SHARE = 0.7
FIT_WORDS = ("fits", "tight", "does not fit")
# Loading holds, beside the weights: the file's metadata and the tokenizer built from it (92 MiB
# measured for the bundled model's 49,152-entry vocabulary in GGUF: ~2 KB an entry, which the
# gguf reader parses in Python; a safetensors folder's tokenizer.json costs about a quarter of
# that) and one weight matrix in float32 at a time: dequantized from GGUF, or a safetensors
# tensor read (and, for int8/int4, quantized a block of rows at a time) with the file open for it
# alone (benchmarks/memory_fit.py measures the whole).
LOAD_BYTES_PER_VOCAB_ENTRY = 2048
LOAD_BYTES_PER_VOCAB_ENTRY_FOLDER = 512
# int8/int4 with torch.compile'd products (model/quant_products.py) also hold the compiler and
# its code: 70-130 MiB more at the peak on the bundled model with inductor's disk cache warm (the
# first, cold compile on a machine peaks higher, once).
COMPILED_PRODUCTS_BYTES = 128 << 20
# The decode step compiled as one graph (model/decode_step.py) holds the compiler, its graphs and
# code too: benchmarks/memory_fit.py with the step compiled (context 1024), first with inductor's
# cache cold for these shapes, peaked 228 MiB (float32), 332 MiB (int8) and 414 MiB (int4) above
# the estimates without any compiler memory; warm, 176 / 78 / 98 MiB. The estimate plans for a first load.
COMPILED_STEP_BYTES = 256 << 20


class WeightsOptionError(ValueError):
    """An unknown weights option."""


def check_option(option: str) -> str:
    if option not in WEIGHT_OPTIONS:
        raise WeightsOptionError(f"unknown weights option {option!r}; choose one of {', '.join(WEIGHT_OPTIONS)}")
    return option


def _vocab_params(config: ModelConfig) -> int:
    return config.vocab_size * config.dim * (1 if config.tie_embeddings else 2)


def load_working_bytes(config: ModelConfig, source: str = "gguf") -> int:
    """What a load holds for a moment beside the weights: metadata and tokenizer, and the largest
    matrix in float32. source: "gguf", or "hf-folder" (a safetensors folder)."""
    largest = max(config.vocab_size, config.intermediate_size, config.dim) * config.dim
    per_entry = LOAD_BYTES_PER_VOCAB_ENTRY if source == "gguf" else LOAD_BYTES_PER_VOCAB_ENTRY_FOLDER
    return config.vocab_size * per_entry + largest * 4


def adapter_bytes(option: str, adapter_params: int) -> int:
    """Memory of a LoRA adapter of `adapter_params` numbers on weights in `option`: the base
    weights' dtype over float weights, float32 over int8 / int4 (peft_adapter.load_adapter)."""
    check_option(option)
    return adapter_params * (torch.tensor([], dtype=FLOAT_DTYPES[option]).element_size()
                             if option in FLOAT_DTYPES else 4)


def estimate_for_option(config: ModelConfig, context_len: int, option: str,
                        batch_size: int = 1, adapter_params: int = 0, device_type: str = "cpu",
                        source: str = "gguf") -> MemoryEstimate:
    """Weights in `option` (not "auto") + the KV cache (float32 for int8/int4) + working memory
    (a prefill's activations and what loading holds for a moment), in bytes. `adapter_params`:
    the numbers of a LoRA adapter worn on top (weights_bytes counts it, adapter_bytes).
    `device_type`: where the model goes; compiled products (and their compiler's memory) are
    expected on the CPU only (engine.loader.products_mode). `source`: the file kind, "gguf" or
    "hf-folder" (load_working_bytes)."""
    check_option(option)
    adapter = adapter_bytes(option, adapter_params)
    if option in FLOAT_DTYPES:
        base = estimate_memory(config, context_len, FLOAT_DTYPES[option], batch_size)
        return MemoryEstimate(base.weights_bytes + adapter, base.kv_cache_bytes,
                              base.overhead_bytes + load_working_bytes(config, source) + _step_bytes(device_type, config))
    base = estimate_memory(config, context_len, torch.float32, batch_size)
    vocab = _vocab_params(config)
    matrices = config.n_params - vocab  # norms and biases are a rounding error beside them
    vocab_kind = "int8" if option == "int4" else option
    # int8 on the CPU: a scale per row (model/int8_rows.py), 1 byte a weight + 2 a row of ~dim
    # inputs. Its products compile nothing.
    # int4 on the CPU in torch's int4 kernel layout (model/int4_rows.py) holds Q4_1's 20 bytes a
    # 32 weights (16 of codes, a bfloat16 scale and zero), and its int8 vocabulary goes per row too.
    rows = device_type == "cpu" and int8_rows_expected() and (
        option == "int8" or (option == "int4" and int4_rows_expected()))
    per_weight = dict(BYTES_PER_WEIGHT, int8=1 + 2 / config.dim) if rows else BYTES_PER_WEIGHT
    weights = int(matrices * per_weight[option] + vocab * per_weight[vocab_kind])
    # Weights all in torch's kernel forms (int8 per row; int4 packed with its vocabulary per row) run no
    # compiled product, and the loader then does not probe the compiler (loader.py, needs_products).
    compiler = COMPILED_PRODUCTS_BYTES if device_type == "cpu" and compiled_products_expected() and not rows else 0
    compiler += _step_bytes(device_type, config)
    return MemoryEstimate(weights + adapter, base.kv_cache_bytes,
                          base.overhead_bytes + load_working_bytes(config, source) + compiler)


def int8_rows_expected() -> bool:
    """Whether an int8 load on the CPU would take model/int8_rows.py's form (int8_rows.in_use)."""
    from ..model import int8_rows

    return int8_rows.in_use()


def int4_rows_expected() -> bool:
    """Whether an int4 load on the CPU would take model/int4_rows.py's form (int4_rows.in_use)."""
    from ..model import int4_rows

    return int4_rows.in_use()


def _step_bytes(device_type: str, config: ModelConfig) -> int:
    """The compiled decode step's memory where a load would compile it: the CPU only, and only
    for a model the step takes (the loader's own question, decode_step.unsupported_reason)."""
    return COMPILED_STEP_BYTES if device_type == "cpu" and compiled_step_expected(config) else 0


def fit_word(total_bytes: int, free_bytes: Optional[int]) -> str:
    """"fits", "tight" or "does not fit" (unknown free memory: "fits", as check_fits lets it load)."""
    if free_bytes is None or total_bytes <= COMFORTABLE_SHARE * free_bytes:
        return FIT_WORDS[0]
    return FIT_WORDS[1] if total_bytes <= free_bytes else FIT_WORDS[2]


@dataclass(frozen=True)
class WeightsChoice:
    option: str  # the option used, never "auto"
    dtype: torch.dtype  # compute dtype of the float parts
    compact: Optional[str]  # "int8" / "int4" for chatapp.model.quant, None for plain floats
    reason: str  # why, in a sentence (auto says what it picked)


def choose_weights(option: str, config: ModelConfig, context_len: int, device: torch.device,
                   free_bytes: Optional[int], adapter_params: int = 0, source: str = "gguf") -> WeightsChoice:
    """Resolve `option`. auto: bf16 on CUDA (float32 elsewhere) when it fits comfortably, else
    the most precise compact form that fits; on a CPU bf16 is skipped (slower than float32
    without AVX512-BF16, and int8 measured as close to float32 as bf16 is)."""
    check_option(option)
    if option != "auto":
        return _choice(option, f"weights {option} as asked")
    first = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else (
        "float16" if device.type == "cuda" else "float32")
    candidates = [first, "int8", "int4"]
    for i, candidate in enumerate(candidates):
        total = estimate_for_option(config, context_len, candidate, adapter_params=adapter_params,
                                    device_type=device.type, source=source).total_bytes
        limit_ok = fit_word(total, free_bytes) == "fits" if i < len(candidates) - 1 else fit_word(
            total, free_bytes) != "does not fit"
        if limit_ok:
            why = "fits comfortably" if fit_word(total, free_bytes) == "fits" else "fits, tightly"
            return _choice(candidate, f"auto picked {candidate}: {total / 1024**3:.2f} GiB {why}"
                                      + ("" if i == 0 else f" ({candidates[i - 1]} would not)"))
    return _choice("int4", "auto picked int4, the smallest; it does not fit the free memory either")


def _choice(option: str, reason: str) -> WeightsChoice:
    if option in FLOAT_DTYPES:
        return WeightsChoice(option, FLOAT_DTYPES[option], None, reason)
    return WeightsChoice(option, torch.float32, option, reason)


def fit_table(config: ModelConfig, context_len: int, free_bytes: Optional[int],
              adapter_params: int = 0, device_type: str = "cpu", source: str = "gguf") -> dict[str, dict]:
    """{option: {"bytes", "fit"}} for every concrete option, for the picker and `models --json`."""
    table = {}
    for option in WEIGHT_OPTIONS[1:]:
        total = estimate_for_option(config, context_len, option, adapter_params=adapter_params,
                                    device_type=device_type, source=source).total_bytes
        table[option] = {"bytes": total, "fit": fit_word(total, free_bytes)}
    return table


def model_fit(path, context_len: int = 4096) -> dict:
    """For `chatapp models --json`: {"context_len", "free_bytes", "auto", "options": fit_table}
    for a model file or folder, or {"error": why} when its config cannot be read."""
    from ..errors import ModelLoadError
    from .device import choose_device
    from .loader import estimate_model

    try:
        estimate = estimate_model(path, device="cpu" if choose_device("auto").type == "cpu" else "auto",
                                  context_len=context_len)
    except (ModelLoadError, ValueError, OSError) as exc:
        return {"error": str(exc)}
    return {"context_len": estimate["context_len"], "free_bytes": estimate["free_bytes"],
            "auto": estimate["weights"], "options": estimate["options"]}
