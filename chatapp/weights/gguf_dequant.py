"""GGUF tensor data -> float32 numpy arrays, one tensor at a time (gguf.quants does the maths)."""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType, ReaderTensor
from gguf.quants import dequantize

Q = GGMLQuantizationType

# Types we dequantize (and test). gguf.quants knows more (IQ*, TQ*, Q2_K, ...); they are
# refused until a test checks them against a reference.
SUPPORTED_TYPES = frozenset({Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q5_K, Q.Q6_K})


def supported_type_names() -> str:
    return ", ".join(sorted(t.name for t in SUPPORTED_TYPES))


def numpy_shape(tensor: ReaderTensor) -> tuple[int, ...]:
    """The tensor's shape in numpy (row-major) order: GGUF lists dimensions fastest-first,
    so a 2-D weight stored as [in, out] is (out, in) here, nn.Linear's layout."""
    return tuple(int(d) for d in reversed(tensor.shape.tolist()))


def dequantize_tensor(tensor: ReaderTensor) -> np.ndarray:
    """A new, writable float32 array of numpy_shape(tensor); never a view of the file.

    The caller checks tensor.tensor_type against SUPPORTED_TYPES first.
    """
    values = dequantize(tensor.data, tensor.tensor_type)
    if tensor.tensor_type == Q.F32:
        values = np.array(values, dtype=np.float32)  # dequantize returned a read-only view of the file
    # Quantized data arrives as (rows, bytes per row) and dequantizes to (rows, row length);
    # reshape to the logical shape (e.g. a 1-D tensor read as one row).
    return values.reshape(numpy_shape(tensor))
