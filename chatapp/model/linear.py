"""The model's Linear layer, with faster CPU paths for inference.

Two products dominate inference on a CPU, and the plain `F.linear` (MKL) leaves speed on
the table for both on the machines we measured (2-core AMD EPYC, AVX-512):

* Decoding multiplies one row by each weight matrix: a matrix-vector product bound by how
  fast the weights stream from memory. MKL runs it on one thread (sgemv: 21.6 GB/s with 1
  thread or 2 on a machine that sums an array at 78 GB/s). Cutting the output features
  into `split` blocks and handing them to `torch.bmm` as a batch puts every thread to work
  (34 GB/s with 2 blocks on 2 threads). The blocks are views, not copies: on a
  column-major weight (see configure_fast_paths) `weight.t()` is a
  contiguous (in, out) matrix and each block is a run of its columns. Every output is
  still one dot product over the same inputs in the same order, so the result is
  bit-identical to `F.linear` on that layout.

* Prefill multiplies many rows: a compute-bound matrix product. MKL takes its AVX2 code
  path on AMD processors (about 220 GFLOP/s here); oneDNN, which PyTorch ships for its
  own CPU kernels, uses AVX-512 (about 500 GFLOP/s on the same products). With
  `onednn=True`, multi-row float32 products (prefill, training) go through
  `torch.ops.mkldnn._linear_pointwise`, oneDNN's inner-product primitive, and so do the
  backward products where a gradient is wanted (see OneDNNLinear). Results differ from
  MKL's only by float32 rounding (summation order), about 1e-6 relative.
"""

from __future__ import annotations

import functools
import logging
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


def can_split(weight: torch.Tensor, split: int) -> bool:
    """Whether `split_linear(..., split)` may take the blocked path for this weight."""
    out_features, in_features = weight.shape
    return (split > 1 and weight.device.type == "cpu" and out_features % split == 0
            and weight.stride() == (1, out_features))


def split_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], split: int = 1) -> torch.Tensor:
    """F.linear(x, weight, bias); one-row products on a column-major weight run in `split` blocks."""
    out_features, in_features = weight.shape
    if split <= 1 or x.numel() != in_features or not can_split(weight, split):
        return F.linear(x, weight, bias)
    chunk = out_features // split
    # weight.t() is contiguous (in, out): (in, out) -> (in, split, chunk) -> (split, in, chunk)
    blocks = weight.t().view(in_features, split, chunk).permute(1, 0, 2)
    rows = x.reshape(1, 1, in_features).expand(split, 1, in_features)  # (split, 1, in)
    out = torch.bmm(rows, blocks).view(*x.shape[:-1], out_features)  # (split, 1, chunk) -> (..., out)
    return out if bias is None else out + bias


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether this PyTorch build has oneDNN's linear op and oneDNN is switched on."""
    try:
        available = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        available = False
    if not available:
        log.info("oneDNN linear is not available in this PyTorch build; using F.linear")
    return available


def can_use_onednn(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> bool:
    """Whether oneDNN may run this product: float32 on the CPU, outside autocast."""
    if x.device.type != "cpu" or weight.device.type != "cpu":
        return False
    if x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if bias is not None and bias.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu"):
        return False  # F.linear would run in the autocast dtype
    return torch.backends.mkldnn.enabled and onednn_available()


# oneDNN builds (and JIT-compiles) a primitive for every new product shape and keeps the memory
# even after its cache drops one: 150 prompts of different lengths grew the process by ~370 MB.
# Rows therefore go in chunks of at most CHUNK_ROWS, the last one padded up to a multiple of
# PAD_ROWS, so a weight only ever sees CHUNK_ROWS / PAD_ROWS = 16 shapes (the growth stops
# there: +40 MB over the same 150 prompts). 512 rows keep a training micro-batch of 2 x 256
# tokens in one call (splitting it cost ~5% of a LoRA step in copies).
CHUNK_ROWS = 512
PAD_ROWS = 32


def _inner_product(rows: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """oneDNN's inner product: rows (m, in) -> (m, out)."""
    return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """F.linear(x, weight, bias) computed by oneDNN's inner product (no autograd)."""
    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)  # (M, in)
    if rows.shape[0] == 0:
        return F.linear(x, weight, bias)
    parts = []
    for start in range(0, rows.shape[0], CHUNK_ROWS):
        part = rows[start:start + CHUNK_ROWS]  # (m, in)
        m = part.shape[0]
        padded = -(-m // PAD_ROWS) * PAD_ROWS
        if padded != m:
            part = F.pad(part, (0, 0, 0, padded - m))  # (padded, in), zero rows at the end
        parts.append(_inner_product(part, weight, bias)[:m])
    out = parts[0] if len(parts) == 1 else torch.cat(parts)  # (M, out)
    return out.view(*x.shape[:-1], out_features)


class OneDNNLinear(torch.autograd.Function):
    """F.linear with autograd, every product (forward and backward) on oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(x if weight.requires_grad else None, weight)
        ctx.has_bias = bias is not None
        return onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # grad_out (..., out) @ W (out, in) = linear(grad_out, W^T) -> (..., in)
            grad_x = onednn_linear(grad_out, weight.t(), None)
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            g = grad_out.reshape(-1, grad_out.shape[-1])  # (N, out)
            if ctx.needs_input_grad[1]:
                # grad_out^T (out, N) @ x (N, in) = linear(g^T, x^T) -> (out, in)
                grad_w = onednn_linear(g.t(), x.reshape(-1, x.shape[-1]).t(), None)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_b = g.sum(0)
        return grad_x, grad_w, grad_b


def fast_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                split: int = 1, onednn: bool = False) -> torch.Tensor:
    """F.linear(x, weight, bias), by the fastest path that applies (see the module docstring)."""
    if x.numel() == weight.shape[1]:  # one row: decoding
        return split_linear(x, weight, bias, split)
    if onednn and can_use_onednn(x, weight, bias):
        wants_grad = x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
        if torch.is_grad_enabled() and wants_grad:
            return OneDNNLinear.apply(x, weight, bias)
        return onednn_linear(x, weight, bias)
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """nn.Linear with the paths of `fast_linear`; both off until configure_fast_paths switches them on."""

    decode_split = 1  # set per layer by configure_fast_paths
    onednn = False  # set per layer by configure_fast_paths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_linear(x, self.weight, self.bias, self.decode_split, self.onednn)


@torch.no_grad()
def configure_fast_paths(model: nn.Module, *, decode_split: Optional[int] = None,
                         onednn: Optional[bool] = None, column_major: bool = False) -> int:
    """The one switch of the fast paths: set them on every `Linear` in `model`, found by type
    (a LoRA layer's base layer is one, so adapters follow). None leaves a setting as it is.

    decode_split: one-row products (decoding) in that many blocks, one per thread for
        inference (bit-identical to F.linear on a column-major weight; 1: off).
    onednn: multi-row float32 products (prefill, training, forward and backward) on oneDNN.
    column_major: store each weight column-major (same (out, in) shape and values), the layout
        on which a one-row product can split. MKL's sgemv also streams it faster (16.8 GB/s
        row-major, 22.6 GB/s column-major, 34 GB/s in 2 blocks on a 2-core AVX-512 CPU). A tied
        embedding shares its lm_head's weight, so it changes with it.

    Returns how many layers were set.
    """
    count = 0
    for module in model.modules():
        if not isinstance(module, Linear):
            continue
        if decode_split is not None:
            module.decode_split = decode_split
        if onednn is not None:
            module.onednn = onednn
        if column_major and module.weight.dim() == 2 and module.weight.is_contiguous():
            module.weight.data = module.weight.data.t().contiguous().t()
        count += 1
    return count
