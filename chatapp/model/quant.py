"""Weights kept compact in memory: int8 and int4 in groups of 32, dequantized per product.

Two forms, each close to a GGUF block type so a file in that type is repacked bit for bit:

* int8: `qweight` int8 (out, in) and one float16 scale per group of 32 inputs, `scales`
  (out, in/32): w = q * scale. GGUF Q8_0 is exactly this (34 bytes per 32 weights).
* int4: `qweight` uint8 (out, in/2), two 4-bit codes per byte in GGUF's Q4_0/Q4_1 order
  (byte j of a group holds element j in its low nibble and element j + 16 in its high one),
  with float16 `scales` and `mins` (out, in/32): w = q * scale + min. GGUF Q4_1 is exactly
  this (20 bytes per 32 weights); Q4_0 is scale d, min -8 d.

Under the int8 option on the CPU, a third form replaces Q8_0 at load (int8_rows.py): int8 codes
with a bfloat16 scale per output row, for torch's own int8 kernel (`_weight_int8pack_mm` on
bfloat16 rows, ~35 GB/s for one row here, no compiler); `QuantLinear.rowwise` /
`QuantEmbedding.rowwise` say which form a layer holds, and CHATAPP_INT8_PACK=0 keeps Q8_0.
Under the int4 option on the CPU, Q4_1 weights go to torch's int4 kernel layout at load
(int4_rows.py: the same codes, bfloat16 scale and zero per 32, `_weight_int4pack_mm_for_cpu`
on bfloat16 rows); `packed4` says so, and CHATAPP_INT4_PACK=0 keeps Q4_1.

Products: one row (decode) goes through quant_products.py, a torch.compile'd loop that reads
the compact weight once where a C++ compiler works, else eagerly: the weight dequantized in
L2-sized chunks of rows, each multiplied in float32. Many rows (prefill, training) dequantize
the weight once and multiply on oneDNN. Measured (benchmarks/quant_kernels.py): torch's
weight-only kernels on float32 rows are 3-10x slower than float32 for one row (on bfloat16 rows
they are the fastest one-row products: int8_rows.py uses the int8 one); fbgemm's dynamic int8
product is as fast but needs a prepacked second copy of each weight and quantizes each row on
one scale (through the torch.ao Linear, 7-bit rows: perplexity 61 -> 184 on the default model).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import int4_rows, int8_rows
from .linear import fast_linear
from .quant_products import GROUP, compiled_product, products_in_use, row_product, set_products  # noqa: F401

log = logging.getLogger(__name__)

KINDS = ("int8", "int4")
# Floats dequantized per step of a product: 64K floats = 256 KB, an L2-sized chunk.
CHUNK_ELEMENTS = 1 << 16
# Floats a multi-row product dequantizes at once: 4M floats = 16 MB, every matrix of a small model.
PREFILL_ELEMENTS = 1 << 22


@dataclass
class QuantizedTensor:
    """A 2-D weight (out, in) in one of KINDS; see the module docstring for the layout."""

    kind: str
    qweight: torch.Tensor
    scales: torch.Tensor
    mins: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown quantized kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind == "int4" and self.mins is None:
            raise ValueError("int4 weights need mins")

    @property
    def shape(self) -> tuple[int, int]:
        out_features, packed = self.qweight.shape
        return out_features, packed * (2 if self.kind == "int4" else 1)

    @property
    def nbytes(self) -> int:
        parts = [self.qweight, self.scales] + ([self.mins] if self.mins is not None else [])
        return sum(t.numel() * t.element_size() for t in parts)

    def dequantize(self, start: int = 0, stop: Optional[int] = None) -> torch.Tensor:
        """Rows start:stop of the weight as float32 (rows, in)."""
        return dequantize_rows(self.kind, self.qweight[start:stop], self.scales[start:stop],
                               None if self.mins is None else self.mins[start:stop])

    @classmethod
    def from_float(cls, weight: torch.Tensor, kind: str) -> "QuantizedTensor":
        """Quantize a float (out, in) weight, in must be a multiple of GROUP."""
        out_features, in_features = weight.shape
        if in_features % GROUP:
            raise ValueError(f"a weight of {in_features} inputs does not split into groups of {GROUP}")
        groups = weight.detach().float().reshape(out_features, in_features // GROUP, GROUP)  # (out, G, 32)
        if kind == "int8":
            scale = (groups.abs().amax(-1) / 127).to(torch.float16)  # (out, G)
            safe = torch.where(scale == 0, torch.ones_like(scale), scale).float()
            q = torch.round(groups / safe[..., None]).clamp(-127, 127).to(torch.int8)
            return cls("int8", q.reshape(out_features, in_features), scale)
        if kind == "int4":
            lo, hi = groups.amin(-1), groups.amax(-1)  # (out, G)
            scale = ((hi - lo) / 15).to(torch.float16)
            mins = lo.to(torch.float16)
            safe = torch.where(scale == 0, torch.ones_like(scale), scale).float()
            q = torch.round((groups - mins.float()[..., None]) / safe[..., None]).clamp(0, 15).to(torch.uint8)
            # (out, G, 32) -> low nibbles elements 0..15, high nibbles 16..31: (out, G, 16)
            packed = q[..., :GROUP // 2] | (q[..., GROUP // 2:] << 4)
            return cls("int4", packed.reshape(out_features, in_features // 2), scale, mins)
        raise ValueError(f"unknown quantized kind {kind!r}; one of {', '.join(KINDS)}")


def map_parts(tensor: QuantizedTensor, fn) -> QuantizedTensor:
    """`fn` (a row permutation, a device move) applied to each part of `tensor`; all are
    row-major by output feature."""
    return QuantizedTensor(tensor.kind, fn(tensor.qweight), fn(tensor.scales),
                           None if tensor.mins is None else fn(tensor.mins))


def dequantize_rows(kind: str, qweight: torch.Tensor, scales: torch.Tensor,
                    mins: Optional[torch.Tensor]) -> torch.Tensor:
    """float32 (rows, in) from a block of rows of a QuantizedTensor's parts.

    Every step is a same-dtype or plain-cast kernel: a mixed-dtype addcmul (uint8 codes times
    float scales) took 3 ns per weight here, ten times the cast-then-float route."""
    rows, groups = scales.shape
    scale = scales.to(torch.float32)[..., None]  # (rows, G, 1)
    if kind == "int8":
        return (qweight.to(torch.float32).view(rows, groups, GROUP) * scale).view(rows, groups * GROUP)
    packed = qweight.view(rows, groups, GROUP // 2)  # (rows, G, 16)
    codes = torch.empty(rows, groups, GROUP, dtype=torch.float32, device=qweight.device)
    codes[..., :GROUP // 2] = packed & 15  # elements 0..15 of each group (GGUF order)
    codes[..., GROUP // 2:] = packed >> 4  # elements 16..31
    return torch.addcmul(mins.to(torch.float32)[..., None], codes, scale).view(rows, groups * GROUP)


def chunk_rows(in_features: int) -> int:
    return max(1, CHUNK_ELEMENTS // in_features)


class QuantLinear(nn.Module):
    """Drop-in for the model's Linear with a QuantizedTensor weight (buffers, not parameters:
    they are frozen) and a float bias."""

    def __init__(self, weight: QuantizedTensor, bias: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.kind = weight.kind
        self.out_features, self.in_features = weight.shape
        self.register_buffer("qweight", weight.qweight)
        self.register_buffer("scales", weight.scales)
        self.register_buffer("mins", weight.mins)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.rowwise = False  # int8 with a scale per row (int8_rows.py): qweight (out, in), scales (out,)
        # int4 in torch's int4 kernel layout (int4_rows.py): qweight (out, in/2) packed, scales
        # (in/32, out, 2) bfloat16 scale and zero, mins None
        self.packed4 = False

    def to_rowwise(self, codes: Optional[torch.Tensor] = None, scales: Optional[torch.Tensor] = None) -> None:
        """Hold an int8 weight in int8_rows.py's form (requantized per row unless `codes` and
        `scales` are given: a tied embedding's), for torch's int8 kernel; the Q8_0 parts go."""
        if self.kind != "int8" or self.rowwise:
            raise ValueError("only an int8 weight in the Q8_0 form goes rowwise")
        if codes is None:
            codes, scales = int8_rows.requantize(self.quantized.dequantize, self.out_features)
        self.qweight, self.scales, self.rowwise = codes, scales, True

    def to_packed4(self, packed: Optional[torch.Tensor] = None, sz: Optional[torch.Tensor] = None) -> None:
        """Hold a Q4_1 int4 weight in int4_rows.py's form (converted in place unless `packed` and
        `sz` are given: a tied embedding's), for torch's int4 kernel; the float16 scales and mins go."""
        if self.kind != "int4" or self.packed4 or not int4_rows.packable(self.out_features, self.in_features):
            raise ValueError("only an int4 weight in the Q4_1 form, outputs a multiple of 16, goes to the int4 kernel")
        if packed is None:
            packed, sz = int4_rows.convert_q4_1(self.qweight, self.scales, self.mins)
        self.qweight, self.scales, self.mins, self.packed4 = packed, sz, None, True

    @property
    def quantized(self) -> QuantizedTensor:
        if self.rowwise:
            raise ValueError("a rowwise int8 weight has no Q8_0 form; use row_dequantizer()")
        if self.packed4:
            raise ValueError("a packed int4 weight has no GGUF form (no Q4_1 parts); use row_dequantizer()")
        return QuantizedTensor(self.kind, self.qweight, self.scales, self.mins)

    def row_dequantizer(self):
        """A function (start, stop) -> float32 rows (stop - start, in) of the weight."""
        if self.packed4:
            return lambda start=0, stop=None: int4_rows.dequantize(self.qweight, self.scales, start, stop)
        if not self.rowwise:
            return self.quantized.dequantize
        return lambda start=0, stop=None: int8_rows.dequantize(self.qweight[start:stop], self.scales[start:stop])

    def dequantize(self) -> torch.Tensor:
        """The whole weight as float32 (out, in): for tests and merges, not for products."""
        return self.row_dequantizer()()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()  # (M, in)
        kernel = self.rowwise or self.packed4  # torch's int8 / int4 kernel for a few rows
        if kernel and rows.shape[0] <= int8_rows.ROWS_KERNEL and not (torch.is_grad_enabled() and rows.requires_grad):
            out = (int4_rows.row_product(rows, self.qweight, self.scales) if self.packed4
                   else int8_rows.row_product(rows, self.qweight, self.scales))  # (M, out)
        elif (not kernel and rows.shape[0] == 1
              and (torch.compiler.is_compiling() or compiled_product(self.kind) is not None)):
            # inside a compiled decode step (model/decode_step.py) row_product is the pure function
            out = row_product(self.kind, rows, self.qweight, self.scales, self.mins)
        elif rows.shape[0] > 1 or kernel:
            # A prefill's (or training batch's) rows make the product compute-bound: dequantize
            # once (the whole weight up to PREFILL_ELEMENTS) and let oneDNN's AVX-512 product run
            # long (linear.fast_linear: about 2x MKL's here; autograd too, for LoRA on a compact base;
            # the kernels have no backward, so rowwise / packed4 rows that need gradients come here too).
            step = max(1, PREFILL_ELEMENTS // self.in_features)
            deq = self.row_dequantizer()
            parts = [fast_linear(rows, deq(i, i + step), None, onednn=True)
                     for i in range(0, self.out_features, step)]  # each (M, rows of the chunk)
            out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # (M, out)
        else:
            q = self.quantized
            step = chunk_rows(self.in_features)
            out = torch.cat([F.linear(rows, q.dequantize(i, i + step)) for i in range(0, self.out_features, step)],
                            dim=-1)  # (1, out)
        if self.bias is not None:
            out = out + self.bias
        return out.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, kind={self.kind}"
                + (", rowwise" if self.rowwise else "") + (", packed4" if self.packed4 else ""))


class QuantEmbedding(nn.Module):
    """A token embedding kept as a QuantizedTensor: each lookup dequantizes only its rows."""

    def __init__(self, weight: QuantizedTensor) -> None:
        super().__init__()
        self.kind = weight.kind
        self.num_embeddings, self.embedding_dim = weight.shape
        self.register_buffer("qweight", weight.qweight)
        self.register_buffer("scales", weight.scales)
        self.register_buffer("mins", weight.mins)
        self.rowwise = False  # as QuantLinear.rowwise
        self.packed4 = False  # as QuantLinear.packed4 (a tied lm_head's int4 kernel form)

    @property
    def quantized(self) -> QuantizedTensor:
        if self.rowwise:
            raise ValueError("a rowwise int8 embedding has no Q8_0 form")
        if self.packed4:
            raise ValueError("a packed int4 embedding has no GGUF form (no Q4_1 parts)")
        return QuantizedTensor(self.kind, self.qweight, self.scales, self.mins)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        flat = tokens.reshape(-1)
        if self.packed4:
            return int4_rows.dequantize_at(self.qweight, self.scales, flat).view(*tokens.shape, self.embedding_dim)
        if self.rowwise:
            return int8_rows.dequantize(self.qweight[flat], self.scales[flat]).view(*tokens.shape, self.embedding_dim)
        rows = dequantize_rows(self.kind, self.qweight[flat], self.scales[flat],
                               None if self.mins is None else self.mins[flat])  # (N, dim)
        return rows.view(*tokens.shape, self.embedding_dim)


def use_int8_rows(model: nn.Module, freed: Optional[Callable[[int], None]] = None) -> int:
    """Put every int8 layer of a CPU model in int8_rows.py's form (torch's int8 kernel for
    decode), unless CHATAPP_INT8_PACK=0 or the kernel fails its probe. A token embedding and the
    lm_head tied to it get the same new tensors. Returns how many weights were requantized.

    Under int4 only with int4_rows.py's form in use (an int4 model's int8 vocabulary, its
    largest product, then takes the int8 kernel beside the int4 one); with CHATAPP_INT4_PACK=0 an
    int4 model keeps the file's own numbers, its int8 vocabulary too."""
    if not int8_rows.in_use() or ("int4" in weights_kind(model) and not int4_rows.in_use()):
        return 0
    done: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # Q8_0 codes' address -> the rowwise form
    dropped = 0
    for module in model.modules():
        if (not isinstance(module, (QuantLinear, QuantEmbedding)) or module.kind != "int8" or module.rowwise
                or module.qweight.device.type != "cpu"):
            continue
        key = module.qweight.data_ptr()
        if key not in done:
            rows = module.qweight.shape[0]
            # the codes are rewritten in place; freed: the Q8_0 scales and the float32 blocks it went through
            dropped = module.scales.numel() * module.scales.element_size() + 4 * module.qweight.numel()
            done[key] = int8_rows.requantize(module.quantized.dequantize, rows, out=module.qweight)
        module.qweight, module.scales = done[key]
        module.rowwise = True
        if freed is not None and dropped:
            freed(dropped)  # the Q8_0 parts and the float blocks: the loader gives the heap back
        dropped = 0
    return len(done)


def use_int4_rows(model: nn.Module, freed: Optional[Callable[[int], None]] = None) -> int:
    """Put every Q4_1 int4 layer of a CPU model in int4_rows.py's form (torch's int4 kernel for
    decode), unless CHATAPP_INT4_PACK=0 or the kernel fails its probe; layers whose outputs are
    not a multiple of 16 keep Q4_1. A token embedding and the lm_head tied to it get the same new
    tensors. Returns how many weights were converted. The codes are rewritten in place; `freed`
    hears of the float16 scales and mins dropped and the int32 blocks the conversion went through."""
    if not int4_rows.in_use():
        return 0
    done: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # Q4_1 codes' address -> the packed form
    modules = [m for m in model.modules()
               if isinstance(m, (QuantLinear, QuantEmbedding)) and m.kind == "int4" and not m.packed4
               and m.qweight.device.type == "cpu" and m.mins is not None]
    linear_keys = {m.qweight.data_ptr() for m in modules if isinstance(m, QuantLinear)}
    for module in modules:
        out_f, in_f = module.quantized.shape
        key = module.qweight.data_ptr()
        # an embedding converts only with the lm_head it is tied to (its lookups read the packed rows)
        if not int4_rows.packable(out_f, in_f) or (isinstance(module, QuantEmbedding) and key not in linear_keys):
            continue
        if key not in done:
            dropped = (module.scales.numel() * module.scales.element_size() * 2  # scales and mins
                       + 4 * min(out_f, 1 << 10) * in_f)  # int32 codes of a block of rows
            done[key] = int4_rows.convert_q4_1(module.qweight, module.scales, module.mins)
            if freed is not None:
                freed(dropped)
        module.qweight, module.scales = done[key]
        module.mins, module.packed4 = None, True
    return len(done)


def install_quantized(model: nn.Module, weights: dict[str, QuantizedTensor]) -> int:
    """Swap the model's Linear / Embedding modules named in `weights` ("<module>.weight") for
    their compact forms, in place; a tied lm_head shares the embedding's compact tensors.

    Call after the float parts are loaded (a Linear's bias moves over). Returns the count.
    """
    count = 0
    for name, tensor in weights.items():
        module_name = name.removesuffix(".weight")
        parent_name, _, attr = module_name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        if isinstance(old, nn.Embedding):
            new: nn.Module = QuantEmbedding(tensor)
        elif isinstance(old, nn.Linear):
            bias = old.bias.detach() if old.bias is not None and old.bias.device.type != "meta" else None
            new = QuantLinear(tensor, bias)
        else:
            raise ValueError(f"{name} is not the weight of a Linear or Embedding layer")
        setattr(parent, attr, new)
        count += 1
    config = getattr(model, "config", None)
    if config is not None and config.tie_embeddings and isinstance(getattr(model, "tok_embeddings", None),
                                                                   QuantEmbedding):
        model.lm_head = QuantLinear(model.tok_embeddings.quantized)
    return count


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of every distinct storage the model's parameters and buffers hold (shared counted
    once), the KV cache left out: the weights' memory."""
    seen, total = set(), 0
    buffers = [b for name, b in model.named_buffers() if "kv_cache." not in name]
    for t in list(model.parameters()) + buffers:
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key in seen or t.device.type == "meta":
            continue
        seen.add(key)
        total += storage.nbytes()
    return total


def weights_kind(model: nn.Module) -> str:
    """"int8", "int4", "int4+int8" (mixed) or "" for a model without compact layers."""
    kinds = sorted({m.kind for m in model.modules() if isinstance(m, (QuantLinear, QuantEmbedding))},
                   key=KINDS.index, reverse=True)
    return "+".join(kinds)


def compact_products(model: nn.Module) -> Optional[str]:
    """What the model's one-row compact products run on: "int8-kernel" (torch's int8 kernel on
    rowwise int8 layers, int8_rows.py), "int4-kernel" (torch's int4 kernel on packed4 int4
    layers, int4_rows.py), "compiled" or "eager" (quant_products.py, the Q8_0 / Q4
    forms), both joined by "+" for a mixed model; None for a model without compact layers."""
    layers = [m for m in model.modules() if isinstance(m, (QuantLinear, QuantEmbedding))]
    if not layers:
        return None
    kinds = {"int8-kernel" if m.rowwise else "int4-kernel" if m.packed4 else products_in_use() for m in layers}
    return "+".join(sorted(kinds))


def quantizable(name: str, shape: tuple[int, ...]) -> bool:
    """A weight matrix of a Linear or the token embedding whose rows split into groups of GROUP."""
    return (len(shape) == 2 and name.endswith(".weight") and name != "pos_embeddings.weight"
            and shape[1] % GROUP == 0)


def float_target_kind(option: str, name: str) -> str:
    """The form a float weight takes under `option`: int4 keeps the vocabulary (embedding and
    lm_head, the most sensitive to 4 bits) in int8."""
    return "int8" if option == "int8" or name in ("tok_embeddings.weight", "lm_head.weight") else "int4"


def quantize_state(state: dict, option: str) -> dict:
    """Float state dict -> the same with every quantizable matrix a QuantizedTensor, in place,
    one tensor at a time (each float tensor dropped once its compact form exists)."""
    skipped = []
    for name in list(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor) or not quantizable(name, tuple(tensor.shape)):
            if isinstance(tensor, torch.Tensor) and tensor.dim() == 2 and name != "pos_embeddings.weight":
                skipped.append(name)
            continue
        state[name] = QuantizedTensor.from_float(tensor, float_target_kind(option, name))
        del tensor
    if skipped:
        log.info("kept %d matrices in float (inputs not a multiple of %d): %s", len(skipped), GROUP,
                 ", ".join(skipped[:3]))
    return state


def _runs_products(module: nn.Module) -> bool:
    """A compact weight whose one-row product is quant_products' (not torch's int8 kernel form,
    int8_rows, nor its int4 one, int4_rows)."""
    return isinstance(module, QuantLinear) and not module.rowwise and not module.packed4


def needs_products(model: nn.Module) -> bool:
    """Whether any compact weight of `model` runs its one-row product through quant_products."""
    return any(_runs_products(m) for m in model.modules())


@torch.inference_mode()
def warm_up_products(model: nn.Module, progress=None) -> int:
    """Run the one-row product of each distinct compact weight shape in `model` once, so that
    compiled products compile now (at load) rather than in the first reply. Returns how many
    shapes ran; 0 while eager products are in use.

    Under inference_mode, as the engine decodes: dynamo guards on it, so a warm-up under
    no_grad compiled every shape a second time in the first reply."""
    shapes = {}
    for module in model.modules():
        if _runs_products(module) and compiled_product(module.kind) is not None:
            shapes.setdefault((module.kind, module.qweight.shape), module)
    for done, module in enumerate(shapes.values()):
        if progress:
            progress(done, len(shapes))  # (shapes compiled, shapes): the load's "compile" stage
        row_product(module.kind, torch.zeros(1, module.in_features, device=module.qweight.device), module.qweight,
                    module.scales, module.mins)
    return len(shapes)
