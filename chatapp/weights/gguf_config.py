"""GGUF metadata -> ModelConfig.

Keys follow llama.cpp (gguf-py's `constants.Keys`): `general.architecture`, then
`{arch}.embedding_length`, `{arch}.attention.head_count`, ... Shape facts the metadata does not
hold (vocabulary size, tied embeddings, biases) are read off the tensor table.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
from gguf import GGUFReader, GGUFValueType, ReaderTensor

from ..errors import CorruptFileError, UnsupportedArchitectureError
from ..model.config import ConfigError, ModelConfig, RopeScaling
from ..model.layers import rope_inv_freq
from ..sampling_settings import checked_recommendations
from .gguf_dequant import SUPPORTED_TYPES, dequantize_tensor, numpy_shape
from .gemma import GEMMA_GGUF_ARCHITECTURES, gemma_gguf_fields
from .gguf_names import OUR_ARCH, SUPPORTED_ARCHITECTURES
from .phi3 import longrope_from_gguf

log = logging.getLogger(__name__)

# Llama 3.1 / 3.2's rope_scaling, tried first when a file carries rope_freqs.weight.
_LLAMA3_DEFAULTS = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def field_value(reader: GGUFReader, key: str, path: Optional[Path] = None) -> Any:
    """A metadata value (int, float, str, bool or list of them), or None when the key is absent."""
    field = reader.fields.get(key)
    if field is None:
        return None

    def scalar(part: np.ndarray, kind: GGUFValueType) -> Any:
        return bytes(part).decode("utf-8") if kind == GGUFValueType.STRING else part[0].item()

    try:
        if field.types[0] == GGUFValueType.ARRAY:
            return [scalar(field.parts[i], field.types[-1]) for i in field.data]
        return scalar(field.parts[-1], field.types[0])
    except (UnicodeDecodeError, IndexError, ValueError) as exc:
        raise CorruptFileError(path, f"metadata key {key} cannot be read: {exc}") from exc


# llama.cpp's recommended-sampler keys -> our setting names (keys we do not use are ignored).
GGUF_SAMPLING_KEYS = {
    "general.sampling.temp": "temperature",
    "general.sampling.top_k": "top_k",
    "general.sampling.top_p": "top_p",
    "general.sampling.min_p": "min_p",
    "general.sampling.penalty_repeat": "repetition_penalty",
    "general.sampling.penalty_last_n": "repeat_last_n",
}


def gguf_sampling_defaults(reader: GGUFReader, path: Path | str) -> dict[str, Any]:
    """The sampling settings the file recommends (`general.sampling.*`), valid ones only."""
    found = {ours: field_value(reader, key, Path(path)) for key, ours in GGUF_SAMPLING_KEYS.items()}
    return checked_recommendations({k: v for k, v in found.items() if v is not None}, str(path))


def _tensor(reader: GGUFReader, name: str) -> Optional[ReaderTensor]:
    return next((t for t in reader.tensors if t.name == name), None)


class _Metadata:
    """Reads `{arch}.*` keys with the file's path in every error."""

    def __init__(self, reader: GGUFReader, path: Path, arch: str) -> None:
        self.reader, self.path, self.arch = reader, path, arch

    def get(self, key: str, default: Any = None) -> Any:
        value = field_value(self.reader, f"{self.arch}.{key}", self.path)
        return default if value is None else value

    def require(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise CorruptFileError(self.path, f"lacks the metadata key {self.arch}.{key}",
                                   "the file was not written by a llama.cpp-compatible converter")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CorruptFileError(self.path, f"metadata key {self.arch}.{key} is {value!r}, not a number")
        return float(value)

    def uniform_int(self, key: str, value: Any) -> int:
        """Some files store one value per layer; we need them all equal."""
        if isinstance(value, list):
            if not value or len(set(value)) != 1:
                raise UnsupportedArchitectureError(self.path, f"{self.arch}.{key} varies per layer ({value[:8]}...)",
                                                   "models with per-layer shapes are not supported")
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise CorruptFileError(self.path, f"metadata key {self.arch}.{key} is {value!r}, not an integer")
        return value


def gguf_config(reader: GGUFReader, path: Path | str) -> ModelConfig:
    """The ModelConfig a GGUF file's metadata and tensor table describe."""
    path = Path(path)
    arch = field_value(reader, "general.architecture", path)
    if not isinstance(arch, str):
        raise CorruptFileError(path, "lacks the metadata key general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(path, f"architecture {arch!r} is not supported",
                                           f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    meta = _Metadata(reader, path, arch)
    names = {t.name for t in reader.tensors}
    embedding = _tensor(reader, "token_embd.weight")
    if embedding is None:
        raise CorruptFileError(path, "has no token_embd.weight tensor")
    dim = meta.uniform_int("embedding_length", meta.require("embedding_length"))
    n_heads = meta.uniform_int("attention.head_count", meta.require("attention.head_count"))
    fields: dict[str, Any] = dict(
        arch=OUR_ARCH.get(arch, arch),
        vocab_size=_vocab_size(reader, path, embedding),
        dim=dim,
        n_layers=meta.uniform_int("block_count", meta.require("block_count")),
        n_heads=n_heads,
        intermediate_size=meta.uniform_int("feed_forward_length", meta.require("feed_forward_length")),
        max_seq_len=meta.uniform_int("context_length", meta.require("context_length")),
        tie_embeddings="output.weight" not in names,
        name=str(field_value(reader, "general.name", path) or path.stem),
    )
    if arch == "gpt2":
        fields.update(norm="layernorm", norm_eps=meta.number("attention.layer_norm_epsilon", 1e-5),
                      mlp="gelu", positions="learned", qkv_bias=True, o_bias=True, mlp_bias=True)
    else:
        head_dim = _head_dim(meta, dim, n_heads)
        rotary = meta.get("rope.dimension_count")
        if rotary is not None and rotary != head_dim:
            if arch != "phi3":
                raise UnsupportedArchitectureError(path, f"RoPE rotates {rotary} of {head_dim} head dimensions",
                                                   f"partial rotary embeddings are supported for phi3, not {arch}")
            fields["partial_rotary_factor"] = meta.uniform_int("rope.dimension_count", rotary) / head_dim
        theta = meta.number("rope.freq_base", 10000.0)
        fields.update(
            n_kv_heads=meta.uniform_int("attention.head_count_kv", meta.get("attention.head_count_kv", n_heads)),
            head_dim=head_dim,
            norm="rmsnorm",
            norm_eps=meta.number("attention.layer_norm_rms_epsilon", 1e-5),
            mlp="swiglu",
            positions="rope",
            rope_theta=theta,
            rope_scaling=(_phi3_rope_scaling(reader, meta, fields) if arch == "phi3"
                          else _rope_scaling(reader, meta, head_dim, theta)),
            qkv_bias="blk.0.attn_q.bias" in names,
            o_bias="blk.0.attn_output.bias" in names,
            mlp_bias="blk.0.ffn_up.bias" in names,
        )
        window = meta.get("attention.sliding_window")
        if arch in ("mistral", "phi3") and window is not None:
            # llama.cpp's Phi-3 converter writes 0 for "no window" (Phi-4-mini)
            fields["sliding_window"] = meta.uniform_int("attention.sliding_window", window) or None
        if arch == "smollm3":  # llama.cpp's fixed rule (no GGUF key): no RoPE on every 4th layer
            fields["no_rope_layers"] = [i for i in range(fields["n_layers"]) if (i + 1) % 4 == 0]
        fields["qk_norm"] = arch in ("qwen3", "qwen3moe")
        fields.update(gguf_moe_fields(meta, names))
        if arch in GEMMA_GGUF_ARCHITECTURES:
            fields.update(gemma_gguf_fields(meta, fields))
    try:
        config = ModelConfig(**fields)
    except ConfigError as exc:
        raise CorruptFileError(path, f"metadata describes no working model: {exc}") from exc
    log.debug("%s: %s", path, config)
    return config


def gguf_moe_fields(meta: _Metadata, names: set[str]) -> dict[str, Any]:
    """Mixture-of-experts fields: Mixtral (a "llama" file with experts) and Qwen3-MoE; {} when dense."""
    count = meta.get("expert_count", 0)
    if not count:
        if meta.arch == "qwen3moe":
            raise CorruptFileError(meta.path, "is a qwen3moe file without qwen3moe.expert_count")
        return {}
    fields: dict[str, Any] = dict(
        n_experts=meta.uniform_int("expert_count", count),
        n_experts_per_tok=meta.uniform_int("expert_used_count", meta.require("expert_used_count")),
        # llama.cpp renormalises the top-k weights of both families unless the file says otherwise.
        norm_topk_prob=bool(meta.get("expert_weights_norm", True)),
        dense_layers=tuple(i for i in range(fields_layers(meta)) if f"blk.{i}.ffn_gate_inp.weight" not in names),
    )
    if meta.arch == "llama":
        fields["arch"] = "mixtral"
        if "blk.0.ffn_gate.0.weight" in names:  # the converter's layout before experts were stacked
            raise UnsupportedArchitectureError(meta.path, "Mixtral with one tensor per expert (an old GGUF layout) "
                                                          "is not supported", "convert it again with llama.cpp")
    elif meta.arch != "qwen3moe":
        raise UnsupportedArchitectureError(meta.path, f"{meta.arch} with a mixture of experts is not supported",
                                           "experts are supported in Mixtral and Qwen3-MoE files")
    feed = meta.get("expert_feed_forward_length")
    if feed is not None:
        fields["moe_intermediate_size"] = meta.uniform_int("expert_feed_forward_length", feed)
    return fields


def fields_layers(meta: _Metadata) -> int:
    return meta.uniform_int("block_count", meta.require("block_count"))


def _vocab_size(reader: GGUFReader, path: Path, embedding: ReaderTensor) -> int:
    """Rows of the embedding table: the model's vocabulary, which the token list must not exceed."""
    shape = numpy_shape(embedding)  # (vocab, dim)
    if len(shape) != 2:
        raise CorruptFileError(path, f"token_embd.weight has shape {list(shape)}, expected (vocab, dim)")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is not None and tokens.types and tokens.types[0] == GGUFValueType.ARRAY:
        if len(tokens.data) > shape[0]:
            raise CorruptFileError(path, f"the tokenizer has {len(tokens.data)} tokens but token_embd.weight "
                                         f"only {shape[0]} rows")
    return shape[0]


def _head_dim(meta: _Metadata, dim: int, n_heads: int) -> int:
    key_length = meta.get("attention.key_length")
    value_length = meta.get("attention.value_length")
    if key_length is not None and value_length is not None and key_length != value_length:
        raise UnsupportedArchitectureError(meta.path, f"key length {key_length} differs from value length "
                                                      f"{value_length}", "such attention is not supported")
    if key_length is not None:
        return meta.uniform_int("attention.key_length", key_length)
    if n_heads <= 0 or dim % n_heads:
        raise CorruptFileError(meta.path, f"embedding length {dim} is not divisible by {n_heads} heads")
    return dim // n_heads


def _rope_scaling(reader: GGUFReader, meta: _Metadata, head_dim: int, theta: float) -> Optional[RopeScaling]:
    kind = meta.get("rope.scaling.type")
    factor = meta.get("rope.scaling.factor")
    if kind is None and meta.get("rope.scale_linear") is not None:  # the key older files used
        kind, factor = "linear", meta.get("rope.scale_linear")
    kind = kind or "none"
    if kind == "linear" and factor in (None, 1.0):  # a factor of 1 scales nothing
        kind = "none"
    freqs = _tensor(reader, "rope_freqs.weight")
    if freqs is not None:
        if kind != "none":
            raise UnsupportedArchitectureError(meta.path, f"combines rope_freqs.weight with {kind} RoPE scaling",
                                               "this combination is not supported")
        return _llama3_from_freq_factors(freqs, meta, head_dim, theta)
    if kind == "none":
        return None
    if kind != "linear":
        raise UnsupportedArchitectureError(meta.path, f"RoPE scaling type {kind!r} is not supported",
                                           "supported: none, linear, and Llama-3 frequency factors (rope_freqs)")
    if not isinstance(factor, (int, float)) or factor <= 0:
        raise CorruptFileError(meta.path, f"linear RoPE scaling has factor {factor!r}, not a positive number")
    return RopeScaling(kind="linear", factor=float(factor))


def _phi3_rope_scaling(reader: GGUFReader, meta: _Metadata, fields: dict[str, Any]) -> Optional[RopeScaling]:
    """Phi-3's LongRoPE from its factor tensors and `rope.scaling.*` keys (see phi3.longrope_from_gguf)."""
    lists = {}
    for kind in ("long", "short"):
        tensor = _tensor(reader, f"rope_factors_{kind}.weight")
        if tensor is not None:
            if tensor.tensor_type not in SUPPORTED_TYPES:
                raise UnsupportedArchitectureError(meta.path, f"rope_factors_{kind}.weight is stored as "
                                                              f"{tensor.tensor_type.name}")
            lists[kind] = dequantize_tensor(tensor).astype(np.float64).reshape(-1).tolist()
    kind = meta.get("rope.scaling.type")  # llama.cpp's Phi-3 converter writes none: the tensors say it
    if kind not in (None, "none", "longrope"):
        raise UnsupportedArchitectureError(meta.path, f"Phi-3 RoPE scaling {kind!r} is not supported",
                                           "supported: none, and longrope (rope_factors_long/short tensors)")
    try:
        return longrope_from_gguf(lists.get("long"), lists.get("short"),
                                  meta.get("rope.scaling.original_context_length"),
                                  meta.get("rope.scaling.attn_factor"), fields["max_seq_len"])
    except ConfigError as exc:
        raise CorruptFileError(meta.path, str(exc)) from exc


def _llama3_from_freq_factors(tensor: ReaderTensor, meta: _Metadata, head_dim: int,
                              theta: float) -> Optional[RopeScaling]:
    """Recover Llama-3 RopeScaling from rope_freqs.weight.

    llama.cpp has no rope_scaling metadata for Llama 3.1+: convert_hf_to_gguf.py bakes it into
    per-frequency divisors r (base frequency / r is used): 1 for short wavelengths, `factor`
    for long ones, 1 / ((1 - s) / factor + s) between, where s = (orig_ctx / wavelength - low)
    / (high - low). transformers' GGUF loader ignores this tensor (it loads such models without
    scaling); we recover the parameters and check that they reproduce every divisor.
    """
    if tensor.tensor_type not in SUPPORTED_TYPES or numpy_shape(tensor) != (head_dim // 2,):
        raise UnsupportedArchitectureError(
            meta.path, f"rope_freqs.weight has shape {list(numpy_shape(tensor))} and type "
                       f"{tensor.tensor_type.name}, expected ({head_dim // 2},) floats")
    divisors = dequantize_tensor(tensor).astype(np.float64)  # (head_dim/2,)
    base = rope_inv_freq(head_dim, theta, None).double().numpy()  # (head_dim/2,)
    if np.allclose(divisors, 1.0, rtol=1e-6):
        return None
    factor = float(divisors.max())
    candidates = [RopeScaling(kind="llama3", factor=factor, **_LLAMA3_DEFAULTS)]
    fitted = _fit_llama3(base, divisors, factor)
    if fitted is not None:
        candidates.append(fitted)
    for scaling in candidates:
        ours = rope_inv_freq(head_dim, theta, scaling).double().numpy()
        if np.allclose(ours, base / divisors, rtol=1e-4, atol=0.0):
            log.info("%s: Llama-3 RoPE scaling recovered from rope_freqs.weight: %s", meta.path, scaling)
            return scaling
    raise UnsupportedArchitectureError(meta.path, "rope_freqs.weight holds RoPE frequency factors that are not "
                                                  "Llama-3 scaling", "only Llama-3 style rope_freqs are supported")


def _fit_llama3(base: np.ndarray, divisors: np.ndarray, factor: float) -> Optional[RopeScaling]:
    """Solve for (low, high) with original context 8192 from the blended band; None if it is too thin.

    In the band, s = (1/r - 1/factor) / (1 - 1/factor) is affine in 1/wavelength x = f / 2pi:
    s = A x + B with A = orig / (high - low) and B = -low / (high - low). Only A and B matter,
    so the original context can be fixed at 8192.
    """
    band = (divisors > 1.0 + 1e-4) & (divisors < factor * (1 - 1e-4))
    if band.sum() < 2 or factor <= 1.0:
        return None
    s = (1.0 / divisors[band] - 1.0 / factor) / (1.0 - 1.0 / factor)
    x = base[band] / (2 * math.pi)
    slope, intercept = np.polyfit(x, s, 1)
    if slope <= 0:
        return None
    orig = _LLAMA3_DEFAULTS["original_max_position_embeddings"]
    width = orig / slope  # high - low
    low = -intercept * width
    try:
        return RopeScaling(kind="llama3", factor=factor, low_freq_factor=float(low),
                           high_freq_factor=float(low + width), original_max_position_embeddings=orig)
    except ConfigError:
        return None


