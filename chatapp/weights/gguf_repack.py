"""GGUF tensors -> compact weights (chatapp.model.quant), one tensor at a time.

Q8_0 becomes int8 and Q4_0 / Q4_1 become int4 bit for bit (same codes, same float16
scales; Q4_0's implicit offset of -8 becomes a min of -8 d, exact in float16). Any other
type is dequantized to float32 (that one tensor only, freed at once) and quantized.

Which form a tensor takes (`target_kind`): with "int8" every weight matrix becomes int8;
with "int4" matrices stored in 4 bits (Q4_*) and float matrices become int4, while those the
file keeps in 5-8 bits (Q5_K, Q6_K, Q8_0; often the embedding) stay close to their own, int8,
and so do float embeddings and vocabulary projections, which suffer most from 4 bits.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from gguf import GGMLQuantizationType, ReaderTensor

from ..model.quant import GROUP, QuantizedTensor, float_target_kind, quantizable  # noqa: F401 (re-export)
from ..model.quant import map_parts as map_rows  # noqa: F401 (re-export)
from .gguf_dequant import dequantize_tensor, numpy_shape

Q = GGMLQuantizationType

_FOUR_BIT = frozenset({Q.Q4_0, Q.Q4_1, Q.Q4_K})
_EIGHT_BIT = frozenset({Q.Q8_0, Q.Q6_K, Q.Q5_K})
_FLOAT = frozenset({Q.F32, Q.F16, Q.BF16})


def target_kind(qtype: Q, option: str, name: str) -> str:
    """"int8" or "int4" for a quantizable tensor under weights `option` ("int8" or "int4")."""
    if option == "int8" or qtype in _EIGHT_BIT:
        return "int8"
    return float_target_kind(option, name) if qtype in _FLOAT else "int4"


def repack_tensor(tensor: ReaderTensor, kind: str) -> QuantizedTensor:
    """`tensor` as a QuantizedTensor of `kind`; exact for Q8_0 -> int8 and Q4_0/Q4_1 -> int4."""
    rows, cols = numpy_shape(tensor)
    exact = _exact_repack(tensor, kind, rows, cols)
    if exact is not None:
        return exact
    return QuantizedTensor.from_float(torch.from_numpy(dequantize_tensor(tensor)), kind)


def _exact_repack(tensor: ReaderTensor, kind: str, rows: int, cols: int) -> Optional[QuantizedTensor]:
    qtype = tensor.tensor_type
    if (kind, qtype) not in (("int8", Q.Q8_0), ("int4", Q.Q4_1), ("int4", Q.Q4_0)):
        return None
    raw = np.asarray(tensor.data, dtype=np.uint8).reshape(rows, cols // GROUP, -1)  # (rows, G, block bytes)
    if kind == "int8" and qtype == Q.Q8_0:  # block: d (f16), 32 x int8
        scales = raw[..., :2].copy().view(np.float16)[..., 0]  # (rows, G)
        codes = raw[..., 2:].copy().view(np.int8).reshape(rows, cols)
        return QuantizedTensor("int8", torch.from_numpy(codes), torch.from_numpy(scales))
    if kind == "int4" and qtype == Q.Q4_1:  # block: d (f16), m (f16), 16 bytes of nibbles
        scales = raw[..., :2].copy().view(np.float16)[..., 0]
        mins = raw[..., 2:4].copy().view(np.float16)[..., 0]
        codes = raw[..., 4:].copy().reshape(rows, cols // 2)
        return QuantizedTensor("int4", torch.from_numpy(codes), torch.from_numpy(scales), torch.from_numpy(mins))
    if kind == "int4" and qtype == Q.Q4_0:  # block: d (f16), 16 bytes of nibbles; w = d (q - 8)
        scales = raw[..., :2].copy().view(np.float16)[..., 0]
        mins = (scales.astype(np.float32) * -8).astype(np.float16)  # a power-of-two multiple: exact
        codes = raw[..., 2:].copy().reshape(rows, cols // 2)
        return QuantizedTensor("int4", torch.from_numpy(codes), torch.from_numpy(scales), torch.from_numpy(mins))
    return None


def split_rows(tensor: QuantizedTensor, sizes: list[int]) -> list[QuantizedTensor]:
    """`tensor` cut into consecutive row blocks (views), like Tensor.split(sizes, dim=0)."""
    parts = [t.split(sizes, dim=0) if t is not None else [None] * len(sizes)
             for t in (tensor.qweight, tensor.scales, tensor.mins)]
    return [QuantizedTensor(tensor.kind, q, s, m) for q, s, m in zip(*parts)]
