"""int8 weights with one scale per output row, for torch's own int8 kernel: no compiler needed.

A one-row product on an int8 weight in Q8_0's layout (a scale per 32 weights) is bound by
arithmetic done in float32 (dequantize, then multiply): ~4.7 GB/s of compact weight here,
compiled or not. torch ships a kernel for int8 weights with a scale per output row,
`torch._weight_int8pack_mm(x, w, scales)`, which with bfloat16 input rows streams the weight at
~35 GB/s on this AVX-512 CPU (1536x576: 25 us against 52 us for float32; float32 input rows take
a slow path, 40x slower). It is an ATen operator, so the packaged app has it and torch.compile
calls it from the compiled decode step as an external kernel. Measured beside the candidates
(benchmarks/quant_kernels.py): fbgemm's dynamic int8 product (int8 activations, VNNI) was as
fast per call but needs a second, prepacked copy of the weight that a tied embedding cannot
share, one activation scale per row (outliers: an outlier split doubled its cost to keep the
default model's perplexity), deprecated quantized tensors, and an opaque custom operator with
~15 us of Python per call in the compiled step; oneDNN's qlinear ran 3-7x slower for one row.

The form (`rowwise`): int8 codes (out, in), a plain row-major tensor, and bfloat16 scales (out,),
w = code * scale: 1.0 byte per weight plus 2 per row, against Q8_0's 1.0625. A Q8_0 weight is
requantized per row a block of rows at a time (never the whole matrix in float32); each row's
scale is rounded up to a bfloat16 first, so the codes carry no rounding of the scale. A token
embedding tied to the lm_head takes the same form and the same tensors (rows looked up), so the
vocabulary is held once. Requantizing costs little on the default model (first demo document,
token by token through the kernel, 127 tokens): perplexity 43.21 against 43.01 float32 and 43.10
for Q8_0; the whole 256-token text at once (float32 blocks) 32.98 against 32.92 and 33.04.

Products: one to ROWS_KERNEL rows (decode) go through the kernel with the rows in bfloat16
(8-bit mantissa: 0.3% relative error per product against the same weight in float32). More
rows (prefill, training) dequantize a block of rows to float32 and multiply on oneDNN, as the
Q8_0 form does; so do products that must carry gradients (the kernel has no backward).

Only under the int8 option: int4 keeps the file's own numbers, its int8 vocabulary included.
CHATAPP_INT8_PACK=0 at load keeps the Q8_0 form and its products, for comparison.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Callable, Optional

import torch

log = logging.getLogger(__name__)

ROWS_KERNEL = 4  # products of at most this many rows take the int8 kernel
_ROWS_PER_BLOCK = 1 << 10  # rows requantized at a time (a float32 block of at most 1024 x in)


def switched_off() -> bool:
    return os.environ.get("CHATAPP_INT8_PACK") == "0"


def in_use() -> bool:
    """Whether an int8 load on the CPU takes this form: not CHATAPP_INT8_PACK=0, and the kernel
    passing its probe (what quant.use_int8_rows does and memory estimates count)."""
    return not switched_off() and available()


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether torch's int8 kernel runs here with bfloat16 rows: probed once on a small weight."""
    try:
        codes = torch.tensor([[1] * 32, [-2] * 32], dtype=torch.int8)  # (2, 32)
        out = torch._weight_int8pack_mm(torch.ones(1, 32, dtype=torch.bfloat16), codes,
                                        torch.tensor([0.5, 0.25], dtype=torch.bfloat16))
        ok = torch.equal(out.float(), torch.tensor([[16.0, -16.0]]))
    except Exception as exc:  # noqa: BLE001 - any failure means: keep the Q8_0 products
        log.info("torch's int8 kernel is not usable here (%s): int8 keeps the Q8_0 form", exc)
        return False
    if not ok:
        log.warning("torch's int8 kernel disagreed on a probe: int8 keeps the Q8_0 form")
    return ok


def requantize(dequantize_rows: Callable[[int, int], torch.Tensor], out_features: int,
               out: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 codes (out, in) and bfloat16 scales (out,) of a weight given as
    `dequantize_rows(start, stop)` -> float32 rows, a block of rows at a time.

    out: an int8 (out, in) tensor to write the codes into: the Q8_0 codes themselves (each
    block is dequantized before its rows are overwritten), so the load holds no second copy.
    Otherwise the codes are allocated whole first: blocks kept one by one between the freed
    float temporaries left holes in glibc's heap (+270 MB resident for the default model's
    vocabulary until a trim)."""
    codes = out if out is not None and out.is_contiguous() else None  # the kernel takes contiguous codes
    scales = torch.empty(out_features, dtype=torch.bfloat16)
    for start in range(0, out_features, _ROWS_PER_BLOCK):
        rows = dequantize_rows(start, start + _ROWS_PER_BLOCK)  # (block, in) float32, a copy
        if codes is None:
            codes = torch.empty(out_features, rows.shape[1], dtype=torch.int8)
        stop = start + rows.shape[0]
        # the scale rounded up to a bfloat16 (never down: no code past 127), codes from that scale
        scale = (rows.abs().amax(1).clamp_min(1e-30) / 127 * (1 + 2 ** -7)).to(torch.bfloat16)  # (block,)
        scales[start:stop] = scale
        codes[start:stop] = rows.div_(scale.float()[:, None]).round_().clamp_(-127, 127)
        del rows
    return codes, scales


def dequantize(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """float32 rows (rows, in) from a block of codes and its scales."""
    return codes.to(torch.float32) * scales.to(torch.float32)[:, None]


def row_product(x: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """x (M, in), M <= ROWS_KERNEL, times the weight -> (M, out) float32, in torch's int8 kernel."""
    return torch._weight_int8pack_mm(x.to(torch.bfloat16), codes, scales).to(torch.float32)
