"""GGUF files (llama.cpp's format), memory-mapped: open, read the config, dequantize the weights.

    reader = open_gguf(path)                    # header and tensor table, checked
    config = gguf_config(reader, path)          # metadata -> ModelConfig
    state = load_gguf_state_dict(reader, config, path)   # float tensors in our names

Every failure becomes one of chatapp.errors' types, naming the file. Tensors are dequantized
one at a time, so the peak is the output plus one tensor's float32 copy.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from gguf import GGUFReader, GGUFValueType, ReaderTensor

from .. import limits
from ..errors import (CorruptFileError, MissingFileError, ModelLoadError, ShapeMismatchError,
                      UnsupportedQuantizationError)
from ..model.config import ModelConfig
from ..model.quant import QuantizedTensor
from .gguf_config import gguf_config
from .gguf_dequant import SUPPORTED_TYPES, dequantize_tensor, numpy_shape, supported_type_names
from .heap import HeapTrimmer
from .gguf_repack import map_rows, quantizable, repack_tensor, split_rows, target_kind
from .gguf_names import (FUSED_QKV, ROPE_PERMUTED_ARCHITECTURES, UNIT_OFFSET_NORM_ARCHITECTURES, gguf_name,
                         our_name)
from .phi3 import FUSED_GATE_UP, fused_parts, split_fused
from .validate import check_state_dict, expected_shapes

log = logging.getLogger(__name__)

__all__ = ["open_gguf", "gguf_config", "load_gguf_state_dict", "load_gguf", "undo_rope_permutation"]

Progress = Optional[Callable[[int, int], None]]  # (done, total) tensors

GGUF_MAGIC = b"GGUF"
_ARRAY = int(GGUFValueType.ARRAY)  # compared once per metadata item: an int, not an enum lookup


class _HeaderError(ValueError):
    """The header or tensor table points outside the file."""


class _LimitError(ValueError):
    """The header asks for more metadata than limits.GGUF_* allow (a memory bomb)."""


class _CheckedReader(GGUFReader):
    """GGUFReader that refuses to read past the end of the file, and refuses headers beyond
    limits.GGUF_* before parsing them: gguf keeps a few Python objects per metadata array item
    (~600 bytes each), so a 17 MB file with a two-million-item array would take 1.5 GB.

    gguf's reader slices its memmap without bounds checks: in a truncated file a slice past the
    end comes back short or empty, so a corrupt array length can make it loop on empty reads
    for as long as the length says, and tensor data past the end fails later, obscurely.
    """

    # A plain ndarray view of the memmap: slicing an np.memmap runs Python-level __array_finalize__
    # on every slice, ~1M slices for the default model's vocabulary (plain GGUFReader: 1.7 s to
    # open it; this one: 0.7 s). The view keeps the mapping alive (its .base), and tensor data
    # stays memory-mapped.
    @property
    def data(self) -> np.ndarray:
        return self._bytes

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._bytes = value.view(np.ndarray)

    def _get(self, offset: int, dtype: Any, count: int = 1, *args: Any, **kwargs: Any) -> np.ndarray:
        end = int(offset) + np.dtype(dtype).itemsize * int(count)
        if end > self._bytes.shape[0]:
            raise _HeaderError(f"needs bytes up to offset {end} but the file has only {self._bytes.shape[0]}")
        return super()._get(offset, dtype, count, *args, **kwargs)

    def _build_fields(self, offs: int, count: Any) -> int:
        if int(count) > limits.GGUF_MAX_METADATA_KEYS:
            raise _LimitError(f"{int(count):,} metadata keys, more than the {limits.GGUF_MAX_METADATA_KEYS:,} "
                              "this app reads")
        return super()._build_fields(offs, count)

    def _build_tensor_info(self, offs: int, count: Any) -> Any:
        if int(count) > limits.GGUF_MAX_TENSORS:
            raise _LimitError(f"{int(count):,} tensors, more than the {limits.GGUF_MAX_TENSORS:,} this app reads")
        return super()._build_tensor_info(offs, count)

    def _get_field_parts(self, orig_offs: int, raw_type: int) -> Any:
        if raw_type != _ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        item_type = GGUFValueType(int(self._get(orig_offs, np.uint32)[0]))
        length = int(self._get(orig_offs + 4, np.uint64)[0])
        scalar = self.gguf_scalar_to_np.get(item_type)
        smallest = np.dtype(scalar).itemsize if scalar is not None else 8  # a string: its u64 length
        if length * smallest > self._bytes.shape[0] - orig_offs - 12:
            raise _HeaderError(f"a metadata array at offset {orig_offs} claims {length} items, more than "
                               "the file holds")
        depth = getattr(self, "_array_depth", 0)
        if depth >= limits.GGUF_MAX_ARRAY_NESTING:
            raise _LimitError(f"metadata arrays nested more than {limits.GGUF_MAX_ARRAY_NESTING} deep")
        items = getattr(self, "_array_items", 0) + length
        if items > limits.GGUF_MAX_ARRAY_ITEMS:
            raise _LimitError(f"metadata arrays of more than {limits.GGUF_MAX_ARRAY_ITEMS:,} items in all "
                              f"(one at offset {orig_offs} has {length:,})")
        self._array_items = items
        self._array_depth = depth + 1
        try:
            return super()._get_field_parts(orig_offs, raw_type)
        finally:
            self._array_depth = depth


def open_gguf(path: Path | str) -> GGUFReader:
    """Memory-map a GGUF file and check its header and tensor table against its size."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, "does not exist")
    if path.is_dir():
        raise MissingFileError(path, "is a folder, not a GGUF file")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelLoadError(path, f"cannot be read: {exc}") from exc
    if size < 24:
        raise CorruptFileError(path, f"is too short to be a GGUF file ({size} bytes)")
    if magic != GGUF_MAGIC:
        raise CorruptFileError(path, f"is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r})")
    start = time.perf_counter()
    try:
        reader = _CheckedReader(path, mode="r")
    except OSError as exc:
        raise ModelLoadError(path, f"cannot be read: {exc}") from exc
    except _LimitError as exc:
        raise CorruptFileError(path, f"has {exc}", "it is not a real model; limits in chatapp/limits.py") from exc
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError,
            RecursionError) as exc:
        raise CorruptFileError(path, f"is truncated or has a corrupt header: {exc}") from exc
    if reader.byte_order != "I":
        # gguf.quants decodes native (little-endian) data only.
        raise UnsupportedQuantizationError(path, "is a big-endian GGUF file",
                                           "use the little-endian file of this model")
    _check_tensor_table(reader, path, size)
    log.info("opened %s (%d tensors, %d metadata keys) in %.2f s", path, len(reader.tensors),
             len(reader.fields), time.perf_counter() - start)
    return reader


def _check_tensor_table(reader: GGUFReader, path: Path, size: int) -> None:
    """Every tensor's data must lie inside the file's data section, aligned, without overlap."""
    spans = []
    for t in reader.tensors:
        start, end = t.data_offset, t.data_offset + t.n_bytes
        if start < reader.data_offset or end > size:
            raise CorruptFileError(path, f"tensor {t.name} spans bytes {start}-{end}, outside the data section "
                                         f"{reader.data_offset}-{size} (truncated?)")
        if (start - reader.data_offset) % reader.alignment:
            raise CorruptFileError(path, f"tensor {t.name} starts at a misaligned offset {start}")
        spans.append((start, end, t.name))
    spans.sort()
    for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
        if start < end:
            raise CorruptFileError(path, f"tensors {name} and {other} overlap")


def undo_rope_permutation(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Inverse of llama.cpp's q/k `permute` (see gguf_names.ROPE_PERMUTED_ARCHITECTURES).

    llama.cpp reorders each head's rows from Hugging Face's halves (first half pairs with the
    second) to interleaved pairs; this puts them back. Works on weights and biases.
    """
    rows = weight.shape[0]
    head_dim = rows // n_heads
    rest = weight.shape[1:]
    # (rows, *rest) -> (heads, head_dim/2, 2, *rest): GGUF row order is (pair, member of pair)
    # -> (heads, 2, head_dim/2, *rest): HF row order is (half, position in half) -> (rows, *rest)
    return weight.reshape(n_heads, head_dim // 2, 2, *rest).transpose(1, 2).reshape(rows, *rest)


def _plan(reader: GGUFReader, config: ModelConfig, path: Path) -> list[tuple[ReaderTensor, str]]:
    """(tensor, our name) for every tensor to load, checked for type and shape before any work."""
    expected = expected_shapes(config)
    plan, produced = [], set()
    q_rows, kv_rows = config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    for t in reader.tensors:
        name = our_name(t.name, config.arch)
        if name is None:
            continue
        if name == "":
            log.warning("%s: ignoring unknown tensor %s", path, t.name)
            continue
        if FUSED_QKV in name:
            parts = [name.replace(FUSED_QKV, f".attn.{p}_proj.") for p in "qkv"]
            q_shape = expected.get(parts[0])
            want = None if q_shape is None else (q_rows + 2 * kv_rows, *q_shape[1:])
        elif FUSED_GATE_UP in name:  # Phi-3's ffn_up: gate and up rows (see phi3.split_fused)
            parts = [part for part, _ in fused_parts(name, config)]
            gate_shape = expected.get(parts[0])
            want = None if gate_shape is None else (2 * gate_shape[0], *gate_shape[1:])
        else:
            parts = [name]
            want = expected.get(name)
        if want is None:
            raise ShapeMismatchError(path, f"tensor {t.name} ({name}) has no place in a model of this config",
                                     "the metadata does not describe these weights")
        got = numpy_shape(t)
        if got != want:
            raise ShapeMismatchError(path, f"tensor {t.name} ({name}) has shape {list(got)} but the config "
                                           f"implies {list(want)}")
        if t.tensor_type not in SUPPORTED_TYPES:
            raise UnsupportedQuantizationError(path, f"tensor {t.name} is stored as {t.tensor_type.name}, which "
                                                     "this app cannot dequantize",
                                               f"supported: {supported_type_names()}; re-quantize the model")
        produced.update(parts)
        plan.append((t, name))
    missing = sorted(set(expected) - produced)
    if missing:
        shown = ", ".join(sorted({gguf_name(n, config.arch) for n in missing})[:5])
        more = f" ({len(missing)} parameters in all)" if len(missing) > 5 else ""
        raise ShapeMismatchError(path, f"lacks tensors the config needs: {shown}{more}",
                                 "the file is incomplete or not the model its metadata describes")
    return plan


def load_gguf_state_dict(reader: GGUFReader, config: ModelConfig, path: Path | str,
                         dtype: torch.dtype = torch.float32, progress: Progress = None,
                         compact: Optional[str] = None) -> dict[str, Any]:
    """Dequantize every tensor into our names (see chatapp.weights), in `dtype`.

    compact: "int8" or "int4" keeps weight matrices compact instead (chatapp.model.quant
    QuantizedTensor values, see gguf_repack.target_kind), repacked tensor by tensor: no
    float32 copy of the whole model is ever made. Norms and biases are `dtype` as before.
    With tied embeddings there is no lm_head.weight: the model shares tok_embeddings.weight.
    """
    path = Path(path)
    start = time.perf_counter()
    plan = _plan(reader, config, path)
    permute = config.arch in ROPE_PERMUTED_ARCHITECTURES
    unit_offset = config.arch in UNIT_OFFSET_NORM_ARCHITECTURES
    q_rows, kv_rows = config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    state: dict[str, torch.Tensor] = {}
    trimmer = HeapTrimmer()  # float copies freed between compact tensors: see weights/heap.py
    for done, (t, name) in enumerate(plan, 1):
        shape = numpy_shape(t)
        try:
            if compact is not None and quantizable(name, shape):
                values: Any = repack_tensor(t, target_kind(t.tensor_type, compact, name))
                trimmer.freed_bytes(4 * shape[0] * (shape[1] if len(shape) > 1 else 1))
            else:
                values = torch.from_numpy(dequantize_tensor(t))
                if values.dtype != dtype:
                    values = values.to(dtype)
        except (ValueError, IndexError, TypeError) as exc:
            raise CorruptFileError(path, f"tensor {t.name} cannot be dequantized: {exc}") from exc
        if permute and ".attn.q_proj." in name:
            values = _rows(values, lambda v: undo_rope_permutation(v, config.n_heads))
        elif permute and ".attn.k_proj." in name:
            values = _rows(values, lambda v: undo_rope_permutation(v, config.n_kv_heads))
        elif unit_offset and name.endswith("norm.weight"):
            values = values - 1  # llama.cpp stored Gemma's 1 + w (see UNIT_OFFSET_NORM_ARCHITECTURES)
        if FUSED_QKV in name:
            # (q_rows + 2 kv_rows, ...) -> q (q_rows, ...), k and v (kv_rows, ...); row views, no copy
            sizes = [q_rows, kv_rows, kv_rows]
            parts = split_rows(values, sizes) if isinstance(values, QuantizedTensor) else values.split(sizes, dim=0)
            for part, rows in zip("qkv", parts):
                state[name.replace(FUSED_QKV, f".attn.{part}_proj.")] = rows
        elif FUSED_GATE_UP in name:
            state.update(split_fused(name, values, config))  # shape checked by _plan
        else:
            state[name] = values
        if progress:
            progress(done, len(plan))
    if config.tie_embeddings:
        state.pop("lm_head.weight", None)
    check_state_dict(config, state, path)
    log.info("read %d tensors of %s as %s in %.2f s", len(plan), path.name,
             compact or str(dtype).replace("torch.", ""), time.perf_counter() - start)
    return state


def _rows(values: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """fn on a float tensor, or on every part of a QuantizedTensor (rows are outputs in both)."""
    return map_rows(values, fn) if isinstance(values, QuantizedTensor) else fn(values)


def load_gguf(path: Path | str, dtype: torch.dtype = torch.float32, progress: Progress = None,
              compact: Optional[str] = None) -> tuple[ModelConfig, dict[str, Any]]:
    """open_gguf + gguf_config + load_gguf_state_dict."""
    reader = open_gguf(path)
    config = gguf_config(reader, path)
    return config, load_gguf_state_dict(reader, config, path, dtype=dtype, progress=progress, compact=compact)
