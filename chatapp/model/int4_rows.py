"""int4 weights in torch's int4 kernel layout: decode through `_weight_int4pack_mm_for_cpu`.

An int4 weight kept in Q4_1's layout (two codes a byte, a float16 scale d and min m per 32
weights, w = d * q + m) decodes through compiled dequantize-and-multiply loops (quant_products.py)
bound by their float arithmetic. torch ships a CPU kernel for 4-bit weights,
`torch._weight_int4pack_mm_for_cpu(x, packed, group, scales_and_zeros)`, which with bfloat16
input rows is the fastest one-row product measured here (benchmarks/quant_kernels.py: 13-35 us
for the default model's layer shapes). It is an ATen operator: the packaged app has it (no
compiler) and the compiled decode step calls it as an external kernel.

The kernel's form: codes q in 0..15 packed by `torch._convert_weight_to_int4pack_for_cpu` (an
(out, in/2) uint8 tensor, rows interleaved in blocks of BLOCK_N for its vector loads), and
bfloat16 scales and zeros (in/group, out, 2): w = (q - 8) * scale + zero (checked on a probe,
`available`). Q4_1 is the same numbers: scale = d, zero = m + 8 d, group 32 (the kernel takes
32, 64, 128 and 256). The codes are kept bit for bit; the one change is the bfloat16 rounding of
d and m + 8 d (8 significant bits against float16's 11: at most 2^-8 of each, so a weight moves by
at most d / 32 + |m + 8 d| / 256, 1/32 of its quantization step). Bytes: 0.5 a weight plus 4 per 32, Q4_1's own 0.625.

Each Q4_1 weight is converted at load in place: the packed codes are written over the Q4_1
codes a block of rows at a time (the kernel's blocks of BLOCK_N rows map to the same bytes of the
(out, in/2) tensor), so the load holds no second copy of a matrix; the scales and zeros replace
the float16 scales and mins. A token embedding tied to the lm_head takes the same tensors (rows
looked up by index). Layers whose outputs are not a multiple of 16 (the kernel's packing needs
it) keep Q4_1.

Products: one to ROWS_KERNEL rows (decode) go through the kernel with the rows in bfloat16 (its
output is bfloat16 too: ~0.3% relative error per product, as int8_rows.py's kernel). More rows
(prefill, training) and products that carry gradients dequantize blocks of rows to float32
(`dequantize`) and multiply on oneDNN, as the Q4_1 form does.

CHATAPP_INT4_PACK=0 at load keeps the Q4_1 form and its products, for comparison
(benchmarks/quantized.py's "int4-q4_1").
"""

from __future__ import annotations

import functools
import logging
import os

import torch

log = logging.getLogger(__name__)

GROUP = 32  # Q4_1's group, one of the kernel's group sizes
BLOCK_N = 64  # rows interleaved by the kernel's packing on this CPU (checked by `available`)
ROWS_KERNEL = 4  # products of at most this many rows take the int4 kernel
_ROWS_PER_BLOCK = 1 << 10  # rows converted at a time; a multiple of BLOCK_N


def switched_off() -> bool:
    return os.environ.get("CHATAPP_INT4_PACK") == "0"


def in_use() -> bool:
    """Whether an int4 load on the CPU converts its Q4_1 weights to this form: not
    CHATAPP_INT4_PACK=0, and the kernel passing its probe."""
    return not switched_off() and available()


def packable(out_features: int, in_features: int) -> bool:
    """Shapes the kernel's packing takes: outputs a multiple of 16, inputs of GROUP."""
    return out_features % 16 == 0 and in_features % GROUP == 0


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether torch's int4 kernel runs here and its layout is the one `unpack` reads: a probe
    weight (full blocks and a tail block) packed, read back, and multiplied."""
    try:
        g = torch.Generator().manual_seed(0)
        out_f, in_f = 2 * BLOCK_N + 48, 2 * GROUP
        codes = torch.randint(0, 16, (out_f, in_f), generator=g, dtype=torch.int32)  # (out, in)
        packed = torch._convert_weight_to_int4pack_for_cpu(codes, 1)  # (out, in/2) uint8
        if tuple(packed.shape) != (out_f, in_f // 2) or not torch.equal(unpack(packed, 0, out_f).to(torch.int32),
                                                                        codes):
            log.info("torch's int4 packing is not the layout read here: int4 keeps the Q4_1 form")
            return False
        # small powers of two: every product and sum exact in bfloat16
        scale = torch.full((in_f // GROUP, out_f), 0.25)
        zero = torch.full((in_f // GROUP, out_f), 2.0)
        sz = torch.stack([scale, zero], -1).to(torch.bfloat16)  # (in/32, out, 2)
        x = torch.zeros(1, in_f, dtype=torch.bfloat16)
        x[0, 3] = 1.0
        got = torch._weight_int4pack_mm_for_cpu(x, packed, GROUP, sz).float()  # (1, out)
        want = ((codes[:, 3].float() - 8) * 0.25 + 2.0)[None]
        ok = torch.equal(got, want)
    except Exception as exc:  # noqa: BLE001 - any failure means: keep the Q4_1 products
        log.info("torch's int4 kernel is not usable here (%s): int4 keeps the Q4_1 form", exc)
        return False
    if not ok:
        log.warning("torch's int4 kernel disagreed on a probe: int4 keeps the Q4_1 form")
    return ok


def q4_1_codes(qweight: torch.Tensor) -> torch.Tensor:
    """Codes 0..15 (rows, in) int32 of Q4_1 bytes (rows, in/2): byte j of a group holds element
    j in its low nibble and element j + 16 in its high one."""
    rows, half = qweight.shape
    packed = qweight.view(rows, half // (GROUP // 2), GROUP // 2)  # (rows, G, 16)
    codes = torch.empty(rows, half // (GROUP // 2), GROUP, dtype=torch.int32)  # (rows, G, 32)
    codes[..., :GROUP // 2] = packed & 15
    codes[..., GROUP // 2:] = packed >> 4
    return codes.view(rows, 2 * half)


def convert_q4_1(qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's form of a Q4_1 weight: (packed codes (out, in/2) uint8, scales and zeros
    (in/32, out, 2) bfloat16). The packed codes are written over `qweight` itself (contiguous),
    a block of rows at a time: each block's Q4_1 bytes are read before its rows are overwritten."""
    out_f, half = qweight.shape
    if not qweight.is_contiguous():
        qweight = qweight.contiguous()
    for start in range(0, out_f, _ROWS_PER_BLOCK):
        stop = min(out_f, start + _ROWS_PER_BLOCK)
        codes = q4_1_codes(qweight[start:stop])  # (block, in) int32, a copy
        qweight[start:stop] = torch._convert_weight_to_int4pack_for_cpu(codes, 1)
        del codes
    d = scales.to(torch.float32)  # (out, G) float16 values: exact in float32
    zero = mins.to(torch.float32) + 8 * d  # w = d q + m = d (q - 8) + (m + 8 d)
    sz = torch.stack([d.t(), zero.t()], -1).to(torch.bfloat16).contiguous()  # (G, out, 2)
    return qweight, sz


def unpack(packed: torch.Tensor, start: int, stop: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """Codes 0..15 (stop - start, in) uint8 of rows start:stop of a packed weight (out, in/2).

    The kernel's layout (this CPU's, AVX-512): full blocks of BLOCK_N rows, each (in, BLOCK_N/2)
    bytes, byte j of input k holding row j in its low nibble and row j + BLOCK_N/2 in its high
    one; the last rows, fewer than BLOCK_N, as (in, rows/2) bytes holding rows 2j and 2j + 1."""
    out_f, half = packed.shape
    in_f = 2 * half
    stop = min(stop, out_f)
    flat = packed.reshape(-1)
    full = out_f // BLOCK_N * BLOCK_N
    parts = []
    if start < full:
        b0, b1 = start // BLOCK_N, -(-min(stop, full) // BLOCK_N)
        blocks = flat[b0 * BLOCK_N * half:b1 * BLOCK_N * half].view(b1 - b0, in_f, BLOCK_N // 2)  # (nb, in, 32)
        codes = torch.empty(b1 - b0, BLOCK_N, in_f, dtype=dtype)  # (nb, BLOCK_N, in), cast as written
        codes[:, :BLOCK_N // 2] = (blocks & 15).transpose(1, 2)  # rows j
        codes[:, BLOCK_N // 2:] = (blocks >> 4).transpose(1, 2)  # rows j + 32
        codes = codes.view((b1 - b0) * BLOCK_N, in_f)  # (rows, in)
        parts.append(codes[start - b0 * BLOCK_N:min(stop, full) - b0 * BLOCK_N])
    if stop > full:
        tail = out_f - full
        block = flat[full * half:].view(in_f, tail // 2)  # (in, tail/2)
        codes = torch.stack([block & 15, block >> 4], -1).view(in_f, tail).t()  # (tail, in)
        parts.append(codes[max(start, full) - full:stop - full].to(dtype))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def dequantize(packed: torch.Tensor, sz: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """float32 rows (stop - start, in) of a packed weight, (q - 8) * scale + zero: a column-major
    view (the transpose of a contiguous (in, rows) tensor), which is the order the packing keeps
    (input k, then rows) and the layout oneDNN and MKL take as readily as row-major; unpacking
    into rows instead (a transpose of every block) cost prefill ~13%."""
    out_f, half = packed.shape
    in_f = 2 * half
    stop = out_f if stop is None else min(stop, out_f)
    full = out_f // BLOCK_N * BLOCK_N
    lo = start // BLOCK_N * BLOCK_N if start < full else full  # whole blocks (or the whole tail), cut after
    flat = packed.reshape(-1)
    parts = []
    if lo < full:
        b0, b1 = lo // BLOCK_N, -(-min(stop, full) // BLOCK_N)
        blocks = flat[b0 * BLOCK_N * half:b1 * BLOCK_N * half].view(b1 - b0, in_f, BLOCK_N // 2)  # (nb, in, 32)
        codes = torch.empty(in_f, b1 - b0, BLOCK_N, dtype=torch.float32)  # (in, nb, BLOCK_N), cast as written
        codes[:, :, :BLOCK_N // 2] = (blocks & 15).transpose(0, 1)  # rows j of each block
        codes[:, :, BLOCK_N // 2:] = (blocks >> 4).transpose(0, 1)  # rows j + 32
        parts.append(codes.view(in_f, (b1 - b0) * BLOCK_N))  # (in, rows b0*64 .. b1*64)
    if stop > full:
        tail = out_f - full
        block = flat[full * half:].view(in_f, tail // 2)  # (in, tail/2): rows 2j low, 2j + 1 high
        parts.append(torch.stack([block & 15, block >> 4], -1).view(in_f, tail).to(torch.float32))
    codes = parts[0] if len(parts) == 1 else torch.cat(parts, 1)  # (in, stop' - lo)
    rows = codes.shape[1]
    scale = sz[:, lo:lo + rows, 0].to(torch.float32)  # (G, rows)
    offset = sz[:, lo:lo + rows, 1].to(torch.float32) - 8 * scale  # zero - 8 scale
    # q * scale is exact in float32 (4 by 8 significant bits); one rounding for the sum
    w = torch.addcmul(offset[:, None], codes.view(-1, GROUP, rows), scale[:, None])  # (G, 32, rows)
    return w.view(in_f, rows)[:, start - lo:stop - lo].t()  # (stop - start, in), column-major


def dequantize_at(packed: torch.Tensor, sz: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """float32 rows (len(index), in) of a packed weight at the row numbers `index` (an
    embedding's lookup), read byte by byte from the layout `unpack` describes (tensor ops only:
    it traces into the compiled decode step)."""
    out_f, half = packed.shape
    in_f = 2 * half
    full = out_f // BLOCK_N * BLOCK_N
    tail = out_f - full
    idx = index.reshape(-1, 1).long()  # (R, 1)
    k = torch.arange(in_f, device=packed.device)[None, :]  # (1, in)
    in_full = idx < full
    byte = torch.where(in_full, idx // BLOCK_N * BLOCK_N * half + k * (BLOCK_N // 2) + idx % (BLOCK_N // 2),
                       full * half + k * max(tail // 2, 1) + (idx - full).clamp_min(0) // 2)  # (R, in)
    high = torch.where(in_full, idx % BLOCK_N >= BLOCK_N // 2, (idx - full) % 2 == 1)  # (R, 1)
    values = packed.reshape(-1)[byte]  # (R, in) uint8
    codes = torch.where(high, values >> 4, values & 15).to(torch.float32)
    part = sz[:, index.reshape(-1)].to(torch.float32).transpose(0, 1).contiguous()  # (R, G, 2)
    q = codes.view(idx.shape[0], sz.shape[0], GROUP).sub_(8)
    return torch.addcmul(part[..., 1:], q, part[..., :1]).view(idx.shape[0], in_f)


def row_product(x: torch.Tensor, packed: torch.Tensor, sz: torch.Tensor) -> torch.Tensor:
    """x (M, in), M <= ROWS_KERNEL, times the weight -> (M, out) float32, in torch's int4 kernel."""
    return torch._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16).contiguous(), packed, GROUP, sz).to(torch.float32)
