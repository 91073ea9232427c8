"""Which product kernel should a compact (int8 / int4) weight use on this CPU? Measure, then pick.

    nice -n 10 .venv/bin/python benchmarks/quant_kernels.py [--threads 2] [--rows 1 128] [--compile]

For the default model's weight shapes (out x in: 576x576, 1536x576, 576x1536, and the
49152x576 vocabulary projection) and for one row (decode) and prefill rows, it times:

  f32           F.linear on a float32 weight (MKL)
  f32-split     our decode path (chatapp.model.linear.split_linear, column-major weight)
  int8pack      torch._weight_int8pack_mm (int8 per output channel, bf16/f32 scales)
  int4pack      torch._weight_int4pack_mm_for_cpu (4-bit, groups of 32, scale and zero)
  int8-deq      eager: int8 -> float32 in blocks of output rows, then F.linear per block
  int8-dyn      fbgemm dynamic int8 (torch.ao dynamic-quantized Linear; quantizes the rows too,
                7-bit: reduce_range)
  fbgemm-dyn    fbgemm's product called directly (torch.ops.quantized.linear_dynamic, 8-bit rows,
                one scale per call, needs a prepacked second copy of the weight)
  fbgemm-split  the same with each row split into its outliers (> 1/8 of its largest) and the rest,
                each part on its own scale, 2M rows in one call (what keeping perplexity needed)
  onednn-u8     oneDNN's qlinear (torch.ops.onednn.qlinear_pointwise) on uint8 rows quantized here
  rows-bf16     the app's int8 decode product (chatapp/model/int8_rows.py): int8 codes with a
                bfloat16 scale per row, torch._weight_int8pack_mm on bfloat16 rows; more than 4
                rows take the app's prefill path instead (float32 blocks on oneDNN)
  int4pack-bf16 torch._weight_int4pack_mm_for_cpu on bfloat16 rows (its float32 path is the
                int4pack row above)
  int8-compile  torch.compile of dequantize-and-multiply, per-channel int8 (only with --compile:
                needs a C++ compiler)
  q8-compiled   the app's compiled one-row product on its int8 layout (Q8_0: a scale per 32)
  q4-compiled   the same on its int4 layout (Q4_1: scale and min per 32); both with --compile,
                one row only (chatapp/model/quant_products.py)

Each figure is the median of several timed repetitions, in microseconds, with the weight
bytes it streams per microsecond (GB/s) for one row. One JSON line per measurement goes to
stdout; a table goes to the log. The machine is shared: compare columns of one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

from chatapp.model import quant_products
from chatapp.model.linear import split_linear
from chatapp.model.quant import QuantizedTensor, QuantLinear, tensor_bytes

log = logging.getLogger("quant_kernels")

SHAPES = [(576, 576), (1536, 576), (576, 1536), (49152, 576)]  # (out, in)


def timed(fn, reps: int) -> float:
    """Median seconds of `fn()` over `reps` runs after two warm-ups."""
    fn()
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def int8_per_channel(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0  # (out,)
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)  # (out, in)
    return q, scale


def int4_pack(w: torch.Tensor, group: int = 32):
    """(packed for _weight_int4pack_mm_for_cpu, scales_and_zeros (in/group, out, 2))."""
    out_f, in_f = w.shape
    g = w.reshape(out_f, in_f // group, group)  # (out, groups, group)
    lo, hi = g.amin(-1), g.amax(-1)
    scale = ((hi - lo) / 15).clamp_min(1e-12)  # (out, groups)
    q = torch.round((g - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(out_f, in_f)
    # torch's convention: w = (q - 8) * scale + zero, zero = lo + 8 * scale
    zeros = lo + 8 * scale
    scales_and_zeros = torch.stack([scale, zeros], dim=-1).transpose(0, 1).contiguous()  # (groups, out, 2)
    packed = torch._convert_weight_to_int4pack_for_cpu(q, 1)
    return packed, scales_and_zeros


def candidates(w: torch.Tensor, rows: int, threads: int, compile_too: bool):
    out_f, in_f = w.shape
    x = torch.randn(rows, in_f)
    w_cm = w.t().contiguous().t()
    q8, s8 = int8_per_channel(w)
    packed4, sz4 = int4_pack(w)
    block = 4096

    def int8_deq():
        parts = [F.linear(x, q8[i:i + block].float() * s8[i:i + block, None]) for i in range(0, out_f, block)]
        return torch.cat(parts, dim=-1)

    yield "f32", lambda: F.linear(x, w), out_f * in_f * 4
    yield "f32-split", lambda: split_linear(x, w_cm, None, threads), out_f * in_f * 4
    yield "int8pack", lambda: torch._weight_int8pack_mm(x, q8, s8), out_f * in_f
    yield "int4pack", lambda: torch._weight_int4pack_mm_for_cpu(x, packed4, 32, sz4), out_f * in_f // 2
    yield "int8-deq", int8_deq, out_f * in_f
    try:
        from torch.ao.nn.quantized.dynamic import Linear as DynLinear
        dyn = DynLinear(in_f, out_f, bias_=False, dtype=torch.qint8)
        qw = torch.quantize_per_channel(w, s8.double(), torch.zeros(out_f, dtype=torch.long), 0, torch.qint8)
        dyn.set_weight_bias(qw, None)
        yield "int8-dyn", lambda: dyn(x), out_f * in_f
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what it cannot run
        log.info("int8-dyn unavailable: %s", exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated; fbgemm's packing takes nothing else
        qt = torch._make_per_channel_quantized_tensor(q8, s8.double(), torch.zeros(out_f, dtype=torch.long), 0)
        packed = torch.ops.quantized.linear_prepack(qt, None)
    yield "fbgemm-dyn", lambda: torch.ops.quantized.linear_dynamic(x, packed, False), out_f * in_f

    def fbgemm_split():
        big = torch.where(x.abs() > x.abs().amax(-1, keepdim=True) / 8, x, 0.0)  # (M, in)
        parts = torch.cat([x - big, big])  # (2M, in)
        scale = parts.abs().amax(-1, keepdim=True).clamp_min(1e-30)
        out = torch.ops.quantized.linear_dynamic(parts / scale, packed, False) * scale
        return out[:rows] + out[rows:]

    yield "fbgemm-split", fbgemm_split, out_f * in_f
    try:
        wq = torch.ops.onednn.qlinear_prepack(q8, [rows, in_f])
        zeros = torch.zeros(out_f, dtype=torch.long)

        def onednn_u8():
            lo, hi = x.amin().clamp(max=0), x.amax().clamp(min=0)
            a = ((hi - lo) / 255).clamp_min(1e-8)
            zp = int(torch.round(-lo / a))
            xq = torch.round(x / a + zp).clamp(0, 255).to(torch.uint8)
            return torch.ops.onednn.qlinear_pointwise(xq, a.item(), zp, wq, s8.float(), zeros, None, 1.0, 0,
                                                      torch.float32, "none", [], "")

        yield "onednn-u8", onednn_u8, out_f * in_f
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what it cannot run
        log.info("onednn-u8 unavailable: %s", exc)
    lin = QuantLinear(QuantizedTensor.from_float(w, "int8"))
    lin.to_rowwise()
    yield "rows-bf16", lambda: lin(x), tensor_bytes(lin)
    scales_zeros16 = sz4.to(torch.bfloat16)
    yield "int4pack-bf16", (lambda: torch._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), packed4, 32, scales_zeros16)
                            ), out_f * in_f // 2
    if compile_too:
        @torch.compile(dynamic=False)
        def deq_mm(x, q, s):
            return (x @ q.t().to(torch.float32)) * s

        yield "int8-compile", lambda: deq_mm(x, q8, s8), out_f * in_f
        if rows == 1:
            quant_products.set_products("compiled")
            for kind, name in (("int8", "q8-compiled"), ("int4", "q4-compiled")):
                q = QuantizedTensor.from_float(w, kind)
                yield name, (lambda q=q, kind=kind: quant_products.row_product(kind, x, q.qweight, q.scales, q.mins)
                             ), q.nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 128])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for out_f, in_f in SHAPES:
        w = torch.randn(out_f, in_f) * 0.02
        for rows in args.rows:
            reps = args.reps if out_f * rows < 49152 * 64 else max(3, args.reps // 3)
            line = []
            for name, fn, nbytes in candidates(w, rows, args.threads, args.compile):
                try:
                    seconds = timed(fn, reps)
                except Exception as exc:  # noqa: BLE001
                    log.info("%s failed on %dx%d: %s", name, out_f, in_f, exc)
                    continue
                us = seconds * 1e6
                record = {"kernel": name, "out": out_f, "in": in_f, "rows": rows, "us": round(us, 1),
                          "weight_GBps": round(nbytes / seconds / 1e9, 1) if rows == 1 else None,
                          "GFLOPs": round(2 * rows * out_f * in_f / seconds / 1e9, 1)}
                print(json.dumps(record), flush=True)
                line.append(f"{name} {us:8.1f}")
            log.info("%5dx%-5d rows %4d | %s", out_f, in_f, rows, " | ".join(line))


if __name__ == "__main__":
    main()
