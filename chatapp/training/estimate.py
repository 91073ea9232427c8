"""Before training: will it fit, and how long will it take?

Memory is counted from the model's shape: the weights; for the trained parameters their
gradients and AdamW's two moments; the activations kept for the backward pass of one
micro-batch (batch x block tokens through every layer, the attention scores in case the
kernel materialises them, and the vocabulary logits, which dominate small models with large
vocabularies); plus a margin for the framework. It errs on the high side: a refusal names the
batch or block size that would fit, and a run it lets through should not die out of memory.

Time is measured: two forward+backward passes of one micro-batch (the second timed), with
the optimizer untouched, gradients dropped and the random generators restored afterwards,
so the run that follows is exactly the run that would have happened without the measurement.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn

from ..model.config import ModelConfig
from ..model.lora import LoRAConfig
from .checkpoint import rng_state, set_rng_state

GIB = 1024**3
FRAMEWORK_BYTES = 300 * 1024**2  # torch's own allocations, kernels' workspaces, Python
STEP_OVERHEAD = 0.0  # the optimizer step, in micro-batches: AdamW over LoRA's few weights is lost in the noise
# Real / estimated time over runs of `chatapp train` on benchmarks/demo_docs (README, "Time
# estimate"): 0.58 to 1.33 on a 2-core machine shared with other jobs; the estimate's one timed
# pass meets the load of its moment, the run the load of its minutes.
TIME_RANGE = (0.55, 1.35)
WARM_UP_LIMIT_S = 120.0  # a first forward+backward slower than this is timed as it is
# Tokenizing the data before training (prepare.encode_in_pieces: one TOKENIZE_PIECE_CHARS piece
# at a time): the default model's tokenizer peaked 158 MB above the process on one 256k-character
# piece here (and no higher on 2 MB of text, 0.3-0.5 M characters/s); rounded up.
TOKENIZE_PIECE_BYTES = 192 * 1024**2
# While a split is tokenized, its ids and loss mask are Python lists: an 8-byte pointer and a
# ~32-byte int object per id, an 8-byte pointer per mask entry.
TOKENIZE_BYTES_PER_TOKEN = 48


def lora_param_count(config: ModelConfig, lora: LoRAConfig) -> int:
    """Parameters of the LoRA matrices A (r, in) and B (out, r) on the target layers."""
    q_out = config.n_heads * config.head_dim
    kv_out = config.n_kv_heads * config.head_dim
    shapes = {"q_proj": (config.dim, q_out), "k_proj": (config.dim, kv_out), "v_proj": (config.dim, kv_out),
              "o_proj": (q_out, config.dim), "gate_proj": (config.dim, config.intermediate_size),
              "up_proj": (config.dim, config.intermediate_size), "down_proj": (config.intermediate_size, config.dim)}
    if config.mlp != "swiglu":
        shapes.pop("gate_proj")
    # A mixture of experts has no gate/up/down Linear layers: LoRA adapts only its attention.
    dense = config.n_layers - config.n_moe_layers
    return sum(lora.r * (i + o) * (dense if name in ("gate_proj", "up_proj", "down_proj") else config.n_layers)
               for name, (i, o) in shapes.items() if name in lora.target_modules)


def activation_elements(config: ModelConfig, tokens: int, batch: int, block: int, checkpointing: bool) -> int:
    """Elements kept for backward for `tokens` = batch * block positions (a generous count)."""
    kv = config.n_kv_heads * config.head_dim
    q = config.n_heads * config.head_dim
    # Per token and layer: norms' inputs/outputs, q/k/v before and after RoPE, attention output,
    # o_proj input, residuals; the MLP's gate, up, activation and product.
    # A mixture of experts keeps each token's top-k experts' activations, and its routing.
    mlp_width = (config.n_experts_per_tok * config.moe_intermediate_size + config.n_experts if config.n_experts
                 else config.intermediate_size)
    mlp_width = max(mlp_width, config.intermediate_size)  # a MoE model's dense layers, if any
    per_token_layer = 6 * config.dim + 3 * q + 4 * kv + 4 * mlp_width
    scores = batch * config.n_heads * block * block * 2  # attention weights and softmax, per layer
    layer = tokens * per_token_layer + scores
    if checkpointing:  # each block's input is kept; one block is recomputed at a time
        layers = config.n_layers * tokens * config.dim + layer
    else:
        layers = config.n_layers * layer
    logits = 3 * tokens * config.vocab_size  # logits, their float32 copy, the softmax gradient
    return layers + logits


@dataclass
class TrainingMemoryEstimate:
    weights_bytes: int
    trainable_params: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    overhead_bytes: int
    data_bytes: int = 0  # the packed token blocks, held for the whole run
    tokenize_bytes: int = 0  # tokenizing the data, before training: gone when the steps start

    @property
    def total_bytes(self) -> int:
        # Tokenizing happens with the weights loaded but before gradients, optimizer state and
        # activations exist: the peak is the larger of the two phases.
        training = self.gradients_bytes + self.optimizer_bytes + self.activations_bytes
        return self.weights_bytes + self.data_bytes + max(training, self.tokenize_bytes) + self.overhead_bytes

    def describe(self) -> str:
        text = (f"{self.total_bytes / GIB:.2f} GiB (weights {self.weights_bytes / GIB:.2f}, gradients and "
                f"optimizer {(self.gradients_bytes + self.optimizer_bytes) / GIB:.2f}, activations "
                f"{self.activations_bytes / GIB:.2f}")
        if self.data_bytes or self.tokenize_bytes:
            text += f", data {self.data_bytes / GIB:.2f} (tokenizing it {self.tokenize_bytes / GIB:.2f})"
        return text + f", other {self.overhead_bytes / GIB:.2f})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_bytes": self.total_bytes}


def estimate_training_memory(config: ModelConfig, method: str, lora: Optional[LoRAConfig], batch_size: int,
                             block_size: int, weight_dtype: torch.dtype = torch.float32,
                             activation_dtype: Optional[torch.dtype] = None,
                             gradient_checkpointing: bool = False, shards: int = 1, data_bytes: int = 0,
                             tokenize_bytes: int = 0, compact: Optional[str] = None) -> TrainingMemoryEstimate:
    """Peak memory of one training process running micro-batches of `batch_size` x `block_size`.

    compact: "int8" / "int4" for LoRA on a base kept compact (chatapp.model.lora's CompactProduct:
    the base weights take their compact size, no float copy; activations are float32).

    data_bytes: the token blocks the run holds (`blocks_bytes`); tokenize_bytes: the peak of
    tokenizing them (`tokenization_bytes`), before training starts.

    shards: processes the weights, gradients and optimizer state are split between (FSDP);
    each also holds whole, while computing them, the outer group (embeddings, lm_head) and two
    blocks (the one computed and the next, prefetched).
    """
    w_item = torch.tensor([], dtype=weight_dtype).element_size()
    a_item = torch.tensor([], dtype=activation_dtype or weight_dtype).element_size()
    weights = config.n_params * w_item
    if compact is not None:
        if method != "lora":
            raise ValueError(f"only LoRA trains over {compact} weights; full fine-tuning needs float weights")
        from ..engine.weights_option import estimate_for_option

        weights = estimate_for_option(config, 1, compact).weights_bytes
    if method == "lora":
        if lora is None:
            raise ValueError("a LoRA estimate needs the LoRA config")
        trainable = lora_param_count(config, lora)
        t_item = 4  # adapters are float32 over any base dtype
        weights += trainable * t_item
    else:
        trainable, t_item = config.n_params, w_item
    gradients = trainable * t_item
    optimizer = 2 * trainable * t_item  # AdamW's exp_avg and exp_avg_sq
    tokens = batch_size * block_size
    activations = activation_elements(config, tokens, batch_size, block_size, gradient_checkpointing) * a_item
    activations += 3 * tokens * config.vocab_size * (4 - a_item)  # the logits are upcast to float32
    if shards > 1:
        # Gathered whole while computed: the outer group (embeddings, lm_head) and two blocks
        # (the one computed and the next, prefetched).
        outer = config.vocab_size * config.dim * (1 if config.tie_embeddings else 2) * w_item
        block = max(0, config.n_params * w_item - outer) // max(1, config.n_layers)
        weights, gradients, optimizer = (weights // shards + outer + 2 * block, gradients // shards,
                                         optimizer // shards)
    overhead = FRAMEWORK_BYTES + (weights + gradients + optimizer + activations + data_bytes) // 10
    return TrainingMemoryEstimate(weights, trainable, gradients, optimizer, activations, overhead,
                                  data_bytes, tokenize_bytes)


def blocks_bytes(*blocks: Any) -> int:
    """Bytes of packed TokenBlocks (None ignored): the tokens and their loss masks."""
    total = 0
    for b in blocks:
        if b is not None:
            total += b.tokens.nbytes + (b.loss_mask.nbytes if b.loss_mask is not None else 0)
    return total


def tokenization_bytes(n_tokens: int) -> int:
    """Peak memory of tokenizing data that comes to `n_tokens` tokens (one split's lists at a time
    is the truth; all of them is the safe side)."""
    return TOKENIZE_PIECE_BYTES + TOKENIZE_BYTES_PER_TOKEN * n_tokens


def suggest_smaller(config: ModelConfig, method: str, lora: Optional[LoRAConfig], batch_size: int,
                    block_size: int, available: int, **kwargs: Any) -> str:
    """What to change so the estimate fits `available` bytes: a smaller batch, then a smaller block."""
    def fits(b: int, t: int) -> bool:
        return estimate_training_memory(config, method, lora, b, t, **kwargs).total_bytes <= available

    b = batch_size
    while b > 1:
        b //= 2
        if fits(b, block_size):
            accum = math.ceil(batch_size / b)
            return (f"try --batch-size {b} (with --grad-accum {accum} the effective batch stays "
                    f"{b * accum})")
    t = block_size
    while t > 16:
        t //= 2
        if fits(1, t):
            return f"try --batch-size 1 --block-size {t}"
    if method != "lora":
        return "even one short block does not fit: use --method lora, a smaller model, or a larger device"
    return "even one short block does not fit: use a smaller model or a device with more memory"


def parse_bytes(text: str) -> int:
    """'8G', '512MB', '1.5GiB', '1000' -> bytes (binary units)."""
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}.get(s[-1:], 1)
    number = s[:-1] if s[-1:] in "KMGT" and s[-1:] else s
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (examples: 8G, 512M, 1000000)") from None
    if value <= 0:
        raise ValueError(f"a size must be positive, got {text!r}")
    return int(value * scale)


# -- time ---------------------------------------------------------------------------------
def measure_micro_batch_seconds(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                                autocast: Any = None) -> float:
    """Seconds for one forward+backward of (inputs, labels), leaving weights, gradients and RNG as found.

    Two passes, the second timed: the first pays one-time costs (oneDNN primitives for new shapes,
    the allocator's first blocks) that took 28 s against 4.7 s per later step on the default model
    here, which once made the estimate five times the real time. Only a first pass slower than
    WARM_UP_LIMIT_S is taken as it is, not to double an already long wait."""
    import contextlib

    from .trainer import _token_loss_sum

    device = next(model.parameters()).device
    inputs, labels = inputs.to(device), labels.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    saved = rng_state()
    was_training = model.training
    model.clear_cache()
    model.train()
    elapsed = 0.0
    try:
        for attempt in range(2):  # the first warms up kernels and the allocator
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with autocast or contextlib.nullcontext():
                loss = _token_loss_sum(model, inputs, labels)
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
            del loss
            if elapsed > WARM_UP_LIMIT_S:
                break
    finally:
        for p in params:
            p.grad = None
        model.train(was_training)
        set_rng_state(saved)
    return elapsed


def estimate_seconds(micro_batch_s: float, grad_accum: int, steps: int, val_blocks: int, micro_blocks: int,
                     n_evals: int, prepare_s: float = 0.0) -> tuple[float, float, float]:
    """(likeliest, low, high) seconds for reading and tokenizing the data (`prepare_s`, measured:
    a run does it again), the training steps, and the evaluations.

    micro_batch_s: one forward+backward of `micro_blocks` blocks. An optimizer step costs its
    micro-batches plus the optimizer's own work (STEP_OVERHEAD of a micro-batch); an evaluation
    is a forward pass over the `val_blocks` held-out blocks, about a third of forward+backward
    per block. The range is the spread of real / estimated time measured over real runs
    (TIME_RANGE); see the README for the runs."""
    train = micro_batch_s * (grad_accum + STEP_OVERHEAD) * steps
    evals = n_evals * (micro_batch_s / 3) * val_blocks / max(1, micro_blocks)
    likely = train + evals
    low, high = TIME_RANGE
    return likely + prepare_s, likely * low + prepare_s, likely * high + prepare_s
