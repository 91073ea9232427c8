"""One-row products with a compact weight (decode), eager or torch.compile'd, and which is in use.

For one row an eager product must write the dequantized weight out in float32 before it
multiplies, which costs more than streaming float32 weights (see quant.py). torch.compile
turns the functions below into one fused loop that reads the compact weight once: the
fastest form measured on this CPU (benchmarks/quant_kernels.py, benchmarks/quant_step.py).
It needs a C++ compiler and compiles each weight shape the first time it meets it, so:

* "auto" (the default) uses it where a probe finds a working compiler (a small product is
  compiled, run and checked once per process) and never in a packaged (frozen) app;
* "eager" / "compiled" force one (CHATAPP_QUANT_COMPILE=0 / 1 for the loader);
* a compiled product that fails at run time logs it once and eager takes over.

Both forms compute the same sums in float32; they differ by rounding order only.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from typing import Callable, Optional

import torch

log = logging.getLogger(__name__)

GROUP = 32  # weights per scale (and min), as GGUF's Q8_0 / Q4_0 / Q4_1 blocks
MODES = ("auto", "eager", "compiled")


def int8_row_product(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """One row x (1, in) times an int8 weight (out, in) with a scale per 32 inputs -> (1, out).

    Written for torch.compile: the sum runs over the groups (axis 1) with the 32 positions of
    a group as the vector lanes, so the generated loop multiplies-and-adds whole vectors (the
    group's scale broadcast) and reduces across lanes once per output row. Summing within each
    group first made it reduce across lanes once per 32 weights: 1.5-3x slower, 7x for int4."""
    rows, groups = scales.shape
    lanes = (qweight.view(rows, groups, GROUP).to(torch.float32) * x.view(1, groups, GROUP)
             * scales.to(torch.float32)[..., None]).sum(1)  # (rows, 32)
    return lanes.sum(-1)[None]  # (1, rows)


def int4_row_product(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor,
                     mins: torch.Tensor) -> torch.Tensor:
    """One row x (1, in) times an int4 weight: w = q s + m, so x.w = sum over groups of
    s (q . x) + m sum(x); the 16 bytes of a group are the vector lanes (as int8_row_product)."""
    rows, groups = scales.shape
    half = GROUP // 2
    packed = qweight.view(rows, groups, half)  # (rows, G, 16): low nibbles elements 0..15, high 16..31
    xg = x.view(1, groups, GROUP)
    lanes = (((packed & 15).to(torch.float32) * xg[..., :half] + (packed >> 4).to(torch.float32) * xg[..., half:])
             * scales.to(torch.float32)[..., None]).sum(1)  # (rows, 16)
    return (lanes.sum(-1) + (mins.to(torch.float32) * xg.sum(-1)).sum(-1))[None]  # (1, rows)


EAGER = {"int8": int8_row_product, "int4": int4_row_product}
_compiled: dict[str, Callable] = {}  # kind -> compiled function, empty while eager is in use


def _compile_all() -> dict[str, Callable]:
    import torch._dynamo

    # one compiled variant per weight shape (dynamic=False): a model has a handful, a mixed
    # int4+int8 model or several loaded models more than dynamo's default limit of 8
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    return {kind: torch.compile(fn, dynamic=False) for kind, fn in EAGER.items()}


def compiler_on_path() -> bool:
    """A C++ compiler torch.compile could use, outside a packaged app (which promises none),
    without compiling anything; compiler_available() is the real probe."""
    if getattr(sys, "frozen", False):
        return False
    return any(shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++"))


def compiled_products_expected() -> bool:
    """Whether a load with the loader's default would use compiled products, without compiling
    anything (for memory estimates): a compiler on the path and not CHATAPP_QUANT_COMPILE=0."""
    return os.environ.get("CHATAPP_QUANT_COMPILE") != "0" and compiler_on_path()


@functools.lru_cache(maxsize=1)
def compiler_available() -> bool:
    """Whether torch.compile'd products work here: probed once per process (a few seconds the
    first time on a machine, the compiled code then comes from inductor's disk cache)."""
    if not compiler_on_path():  # none found, or a packaged app, which promises none
        log.info("no C++ compiler found: compact products stay eager")
        return False
    try:
        fns = _compile_all()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 2 * GROUP, generator=g)
        q = torch.randint(-127, 128, (8, 2 * GROUP), dtype=torch.int8, generator=g)
        s = torch.rand(8, 2, generator=g).to(torch.float16)
        ok = torch.allclose(fns["int8"](x, q, s), int8_row_product(x, q, s), rtol=1e-4, atol=1e-4)
    except Exception as exc:  # noqa: BLE001 - any failure means: stay eager
        log.info("torch.compile is not usable here (%s): compact products stay eager", exc)
        return False
    if not ok:
        log.warning("a torch.compile'd product disagreed with eager: compact products stay eager")
    return ok


def set_products(mode: str) -> str:
    """Choose the one-row products ("auto", "eager", "compiled"); returns the one in use."""
    if mode not in MODES:
        raise ValueError(f"unknown products mode {mode!r}; one of {', '.join(MODES)}")
    if mode == "eager" or (mode == "auto" and not compiler_available()):
        _compiled.clear()
    elif not _compiled:
        try:
            _compiled.update(_compile_all())
        except Exception as exc:  # noqa: BLE001 - any failure means: stay eager
            log.warning("torch.compile is not usable here (%s); compact products stay eager", exc)
    return products_in_use()


def products_in_use() -> str:
    return "compiled" if _compiled else "eager"


def compiled_product(kind: str) -> Optional[Callable]:
    """The compiled one-row product for `kind`, or None while eager products are in use."""
    return _compiled.get(kind)


def row_product(kind: str, x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor,
                mins: Optional[torch.Tensor]) -> torch.Tensor:
    """x (1, in) times the compact weight -> (1, out), by the products in use; the pure function
    while torch.compile traces a larger graph (a whole decode step) that it becomes part of."""
    fn = None if torch.compiler.is_compiling() else _compiled.get(kind)
    if fn is not None:
        try:
            return fn(x, qweight, scales) if kind == "int8" else fn(x, qweight, scales, mins)
        except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop a reply
            log.warning("compiled %s product failed (%s); using eager products from now on", kind, exc)
            _compiled.clear()
    return int8_row_product(x, qweight, scales) if kind == "int8" else int4_row_product(x, qweight, scales, mins)
