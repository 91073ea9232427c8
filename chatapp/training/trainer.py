"""The training loop: LoRA or full fine-tuning of our Transformer on packed token blocks.

One optimizer step = `grad_accum` micro-batches of `batch_size` blocks; the loss is the mean
next-token cross-entropy over every target token of the step (token-weighted across the
micro-batches, so accumulation does not change the objective). The data order is a seeded
permutation per epoch, so the position in the data is one integer; with the RNG states,
optimizer state and trained weights in a checkpoint, a resumed run repeats an uninterrupted
one exactly (bit for bit on CPU).

Progress goes to a callback as plain dicts, one per event ("eval", "step", "checkpoint",
"done"), ready to be written as JSON lines.

Long because the loop, its checkpoints and its resume keep one state in step (data position,
RNG states, optimizer, trained weights), and `TrainConfig` documents every field it takes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from ..model.linear import configure_fast_paths
from ..model.lora import LoRAConfig, apply_lora, has_lora
from .checkpoint import Checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .dataset import IGNORE_INDEX, TokenBlocks, as_blocks
from .protocol import DEFAULT_LR
from .schedule import WarmupCosine

log = logging.getLogger(__name__)

METHODS = ("lora", "full")
# Fields that may differ between a checkpoint and the run resuming it: none changes the math.
RESUMABLE_CHANGES = {"save_every", "keep_checkpoints", "gradient_checkpointing"}

Progress = Optional[Callable[[dict[str, Any]], None]]
Cancel = Optional[Union[threading.Event, Callable[[], bool]]]


@dataclass
class TrainConfig:
    method: str = "lora"
    lr: float = DEFAULT_LR["lora"]
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 10
    max_steps: Optional[int] = None  # optimizer steps; None: from `epochs`
    epochs: Optional[float] = None  # passes over the training blocks; None with max_steps None: 1
    batch_size: int = 4
    grad_accum: int = 1
    grad_clip: float = 1.0  # max gradient norm; 0: no clipping
    eval_every: int = 50  # steps; 0: evaluate only before and after training
    eval_batch_size: int = 8
    save_every: int = 0  # steps; 0: checkpoints only on cancel and at the end
    keep_checkpoints: int = 2  # the newest N; 0 keeps every one
    early_stop_patience: int = 0  # evaluations without improvement; 0: never stop early
    restore_best: bool = False  # at the end, put back the trained weights of the best evaluation
    seed: int = 0
    block_size: int = 256
    gradient_checkpointing: bool = False
    bf16: bool = True  # bf16 autocast on CUDA; on a CPU only with cpu_bf16
    cpu_bf16: bool = False  # bf16 autocast on a CPU too (run.py: where it has bf16 products, cpu_has_bf16())
    lora: LoRAConfig = field(default_factory=LoRAConfig)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoRAConfig.from_dict(self.lora)
        self.betas = tuple(self.betas)
        self.validate()

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr}, {self.min_lr_ratio}")
        if self.weight_decay < 0 or self.eps <= 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0 and eps > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        for name in ("batch_size", "grad_accum", "eval_batch_size", "block_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "eval_every", "save_every", "keep_checkpoints", "early_stop_patience"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps <= 0):
            raise ValueError(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be positive or None, got {self.epochs!r}")
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError("give max_steps or epochs, not both")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.early_stop_patience and not self.eval_every:
            raise ValueError("early_stop_patience needs eval_every > 0")

    def total_steps(self, n_blocks: int) -> int:
        if self.max_steps is not None:
            return self.max_steps
        per_step = self.batch_size * self.grad_accum
        return max(1, math.ceil((self.epochs or 1.0) * n_blocks / per_step))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls(**data)


@dataclass
class TrainResult:
    reason: str  # "completed", "early_stop", "time_budget" or "cancelled"
    step: int
    total_steps: int
    losses: dict[int, float]  # training loss of each step run in this session
    evals: list[dict[str, float]]  # {"step", "val_loss", "val_ppl"}, whole run (resumes included)
    best_val_loss: Optional[float]
    best_step: Optional[int]
    checkpoint: Optional[Path]  # the state the loop ended in (what a resume continues from)
    restored_step: Optional[int] = None  # the model holds this step's weights (restore_best), not the last


# -- pieces -------------------------------------------------------------------------------
def param_groups(model: nn.Module, weight_decay: float) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """AdamW groups as nanoGPT: decay on matrices; none on norms, biases and embeddings.

    Returns (groups, parameter names per group); only parameters that require grad.
    """
    embedding_params = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    decay, no_decay = ([], []), ([], [])
    for name, p in model.named_parameters():  # a tied lm_head comes once, as the embedding
        if not p.requires_grad:
            continue
        target = no_decay if p.dim() < 2 or id(p) in embedding_params else decay
        target[0].append(p)
        target[1].append(name)
    groups, names = [], []
    for (params, pnames), wd in ((decay, weight_decay), (no_decay, 0.0)):
        if params:
            groups.append({"params": params, "weight_decay": wd})
            names.append(pnames)
    return groups, names


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute each block's activations in the backward pass instead of keeping them.

    Done from outside the model: each Block's forward is shadowed by an instance attribute
    that runs the original under torch.utils.checkpoint (RNG state preserved, so dropout
    draws the same mask twice). `disable_gradient_checkpointing` removes the shadow.
    """
    for block in model.layers:
        if "forward" in vars(block):
            continue
        original = block.forward

        def forward(*args, _original=original, **kwargs):
            return activation_checkpoint(_original, *args, use_reentrant=False, **kwargs)

        block.forward = forward


def disable_gradient_checkpointing(model: nn.Module) -> None:
    for block in model.layers:
        vars(block).pop("forward", None)


def _autocast(device: torch.device, bf16: bool, cpu_bf16: bool = False):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and bf16 and cpu_bf16:
        # Matrix products in bf16, the trained LoRA weights and AdamW's state stay float32.
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): bf16 autocast there made a
    LoRA step of the default model 1.4x faster than float32 (on CPUs without them bf16 products
    are emulated and slower than float32). Read from Linux's /proc/cpuinfo; False elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.lru_cache(maxsize=None)
def _takes_logits_at(cls: type) -> bool:
    return "logits_at" in inspect.signature(cls.forward).parameters


def _token_loss_sum(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over the positions with a label. A model that can
    (Transformer's `logits_at`) projects only those positions onto the vocabulary: the same
    loss and gradients, without the logits of prompts and padding (most of a chat row)."""
    inner = getattr(model, "module", model)  # under DDP / FSDP: the wrapped model's forward
    targets = labels != IGNORE_INDEX  # (B, T)
    # No label at all (a rank's share of a step can be all padding): the full path, whose
    # products are never empty (an empty one has no weight gradient to give under full tuning).
    if _takes_logits_at(type(inner)) and bool(targets.any()):
        logits = model(inputs, logits_at=targets)  # (N, V)
        return F.cross_entropy(logits.float(), labels[targets], reduction="sum")
    logits = model(inputs)  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum")


@torch.no_grad()
def evaluate(model: nn.Module, blocks: Union[TokenBlocks, torch.Tensor], batch_size: int = 8,
             bf16: bool = True, cpu_bf16: bool = False) -> tuple[float, float]:
    """(mean next-token loss, perplexity) over every target of `blocks`, in eval mode."""
    blocks = as_blocks(blocks)
    device = next(model.parameters()).device
    was_training = model.training
    model.clear_cache()
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(blocks), batch_size):
            inputs, labels = blocks.batch(torch.arange(start, min(start + batch_size, len(blocks))))
            labels = labels.to(device)
            with _autocast(device, bf16, cpu_bf16):
                total += _token_loss_sum(model, inputs.to(device), labels).item()
            count += int((labels != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the evaluation blocks have no target tokens")
    loss = total / count
    return loss, math.exp(min(loss, 700.0))


REPLAN_AFTER = 3  # steps measured before a time-bound run is re-sized to its deadline
# ... and again after every step, at the speed measured then: the first steps are the slowest
# (measured: 3 steps said 112 fit in a budget where 200 did), so a run cut at its start grows
# back, up to the length it was given, while it is in the first half of its length and by more
# than GROW_MARGIN (the measured speed jitters).
GROW_BEFORE = 0.5
GROW_MARGIN = 0.05


class _OutOfTime(Exception):
    """Raised by the time guard's hooks inside a step that would end after the deadline."""


# -- the trainer --------------------------------------------------------------------------
class Trainer:
    """Fine-tunes `model` in place. For LoRA, adapters are added unless the model has some.

    Seeds torch's and Python's global generators with `config.seed` (training runs in its
    own process), so the LoRA initialisation and dropout are reproducible.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, train: Union[TokenBlocks, torch.Tensor],
                 val: Union[TokenBlocks, torch.Tensor, None] = None, checkpoint_dir: Union[str, Path, None] = None,
                 progress: Progress = None, cancel: Cancel = None) -> None:
        self.model = model
        self.config = config
        self.train = as_blocks(train)
        self.val = as_blocks(val) if val is not None else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.progress = progress
        self.cancel = cancel
        for name, blocks in (("training", self.train), ("validation", self.val)):
            if blocks is not None and blocks.block_size != config.block_size:
                raise ValueError(f"{name} blocks hold {blocks.block_size} positions, config.block_size "
                                 f"is {config.block_size}")
        if config.block_size > model.config.max_seq_len:
            raise ValueError(f"block_size {config.block_size} exceeds the model's context {model.config.max_seq_len}")
        self.device = next(model.parameters()).device
        self.total_steps = config.total_steps(len(self.train))
        self.schedule = WarmupCosine(config.lr, min(config.warmup_steps, self.total_steps), self.total_steps,
                                     config.lr * config.min_lr_ratio)

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        model.clear_cache()
        if config.method == "lora":
            if not has_lora(model):
                # float32 adapters even over bf16 weights: AdamW updates need the precision.
                apply_lora(model, config.lora, dtype=torch.float32)
        else:
            if has_lora(model):
                raise ValueError("full fine-tuning of a model with LoRA layers: merge_lora() it first")
            model.requires_grad_(True)
        # Float32 matrix products (forward and backward) run on oneDNN on the CPU: about 2x
        # MKL's throughput there (see chatapp/model/linear.py).
        configure_fast_paths(model, onednn=True)
        self._prepare_model()
        groups, self.param_names = param_groups(model, config.weight_decay)
        if not groups:
            raise ValueError("the model has no trainable parameters")
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)

        self.step = 0
        self.position = 0  # training blocks consumed so far, across epochs
        self.evals: list[dict[str, float]] = []
        self.best_val_loss: Optional[float] = None
        self.best_step: Optional[int] = None
        self.bad_evals = 0
        self._best_state: Optional[dict[str, torch.Tensor]] = None  # with restore_best: weights at best_step
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)
        self._step_time: Optional[float] = None
        # A time bound (time.monotonic()): after the first REPLAN_AFTER steps the run's length is
        # re-sized to the steps that fit before it at the measured speed, and a step that would
        # end after it is not started. None: no bound. Set by the caller (run.py, --epochs auto).
        self.deadline: Optional[float] = None
        self._step_times: list[float] = []
        self._eval_s: Optional[float] = None  # seconds the last evaluation took (the final one is reserved)

    # -- data order -----------------------------------------------------------------------
    def _next_indices(self, count: int) -> torch.Tensor:
        n = len(self.train)
        out = []
        for _ in range(count):
            epoch, offset = divmod(self.position, n)
            if epoch != self._perm_epoch:
                g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
                self._perm = torch.randperm(n, generator=g)
                self._perm_epoch = epoch
            out.append(int(self._perm[offset]))
            self.position += 1
        return torch.tensor(out, dtype=torch.long)

    # -- one step -------------------------------------------------------------------------
    def _train_step(self) -> float:
        lr = self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [self.train.batch(self._next_indices(self.config.batch_size))
                   for _ in range(self.config.grad_accum)]
        n_targets = max(1, sum(int((labels != IGNORE_INDEX).sum()) for _, labels in batches))
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for inputs, labels in batches:
            with _autocast(self.device, self.config.bf16, self.config.cpu_bf16):
                loss = _token_loss_sum(self.model, inputs.to(self.device), labels.to(self.device)) / n_targets
            loss.backward()
            total += loss.item()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return total

    def _validation_loss(self) -> tuple[float, float]:
        """(loss, perplexity) on the validation blocks; the distributed trainer shards this."""
        # float32 on a CPU even with cpu_bf16: the perplexity reported is the one `chatapp eval` measures.
        return evaluate(self.model, self.val, self.config.eval_batch_size, self.config.bf16)

    def _evaluate(self) -> dict[str, float]:
        started = time.monotonic()
        loss, ppl = self._validation_loss()
        self._eval_s = time.monotonic() - started
        record = {"step": self.step, "val_loss": loss, "val_ppl": ppl}
        self.evals.append(record)
        if self.best_val_loss is None or loss < self.best_val_loss:
            self.best_val_loss, self.best_step, self.bad_evals = loss, self.step, 0
            if self.config.restore_best:
                self._best_state = self._trainable_snapshot()
        else:
            self.bad_evals += 1
        log.info("step %d: validation loss %.4f, perplexity %.2f", self.step, loss, ppl)
        return record

    def _cancelled(self) -> bool:
        if self.cancel is None:
            return False
        if isinstance(self.cancel, threading.Event):
            return self.cancel.is_set()
        return bool(self.cancel())

    def _emit(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event)

    # -- checkpoints ----------------------------------------------------------------------
    def save(self) -> Optional[Path]:
        if self.checkpoint_dir is None:
            return None
        return self._write_checkpoint(trainable_state(self.model), self.optimizer.state_dict())

    def _write_checkpoint(self, trainable: dict[str, torch.Tensor], optimizer_state: dict[str, Any]) -> Path:
        state = {"position": self.position, "evals": self.evals, "best_val_loss": self.best_val_loss,
                 "best_step": self.best_step, "bad_evals": self.bad_evals, "total_steps": self.total_steps,
                 "train_fingerprint": self.train.fingerprint(), "method": self.config.method}
        path = save_checkpoint(self.checkpoint_dir, self.step, trainable, optimizer_state, self.param_names,
                               rng_state(), state, self.config.to_dict(), keep=self.config.keep_checkpoints,
                               best=self._best_state if self.config.restore_best else None)
        self._emit({"event": "checkpoint", "step": self.step, "path": str(path)})
        return path

    # -- the model's trained weights, whole (overridden where they are sharded) ------------
    def _prepare_model(self) -> None:
        """Called once the trainable parameters are set, before the optimizer is built."""

    def _trainable_snapshot(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the trained parameters."""
        return {n: t.to("cpu", copy=True) for n, t in trainable_state(self.model).items()}

    def _load_trainable(self, tensors: dict[str, torch.Tensor]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in tensors.items():
                params[name].copy_(tensor)

    def _load_optimizer(self, optimizer_state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(optimizer_state)

    def _restore(self, ckpt: Checkpoint) -> None:
        mine, saved = self.config.to_dict(), ckpt.config
        changed = sorted(k for k in set(mine) | set(saved)
                         if k not in RESUMABLE_CHANGES and mine.get(k) != saved.get(k))
        if changed:
            raise ValueError(f"{ckpt.path}: the checkpoint was made with different settings ({', '.join(changed)}); "
                             f"resume with the same settings or start a new run")
        if ckpt.state.get("train_fingerprint") != self.train.fingerprint():
            raise ValueError(f"{ckpt.path}: the training data changed since the checkpoint was saved")
        if ckpt.optimizer_param_names != self.param_names:
            raise ValueError(f"{ckpt.path}: the checkpoint's trained parameters are not this model's")
        self._load_trainable(ckpt.trainable)
        self._load_optimizer(ckpt.optimizer)
        self.step = ckpt.step
        self.position = int(ckpt.state["position"])
        self.evals = list(ckpt.state["evals"])
        self.best_val_loss = ckpt.state["best_val_loss"]
        self.best_step = ckpt.state["best_step"]
        self.bad_evals = int(ckpt.state["bad_evals"])
        self._best_state = ckpt.best
        set_rng_state(ckpt.rng)  # last: nothing after this may draw random numbers before step 1
        log.info("resumed from %s at step %d", ckpt.path, self.step)

    # -- the loop -------------------------------------------------------------------------
    def fit(self, resume_from: Union[str, Path, None] = None) -> TrainResult:
        """Train until max steps, early stop or cancel. `resume_from`: a checkpoint folder."""
        cfg = self.config
        if resume_from is not None:
            self._restore(load_checkpoint(resume_from))
        elif self.val is not None:
            self._emit({"event": "eval", **self._evaluate()})
        was_training = self.model.training
        self.model.clear_cache()
        self.model.train()
        if cfg.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        guard = self._time_guard() if self.deadline is not None else []
        losses: dict[int, float] = {}
        reason = "completed"
        tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
        last_eval_step = self.evals[-1]["step"] if self.evals else None
        try:
            while self.step < self.total_steps:
                if self._cancelled():
                    reason = "cancelled"
                    break
                if self._out_of_time():
                    reason = "time_budget"
                    break
                lr = self.schedule(self.step)
                started = time.perf_counter()
                if guard:
                    position, rng = self.position, rng_state()
                try:
                    loss = self._train_step()
                except _OutOfTime:  # the step would end after the deadline: dropped, as if never begun
                    self.optimizer.zero_grad(set_to_none=True)
                    self.position = position
                    set_rng_state(rng)
                    log.info("time budget: step %d stopped at the deadline and dropped", self.step + 1)
                    reason = "time_budget"
                    break
                elapsed = time.perf_counter() - started
                self._step_time = elapsed if self._step_time is None else 0.9 * self._step_time + 0.1 * elapsed
                self._step_times.append(elapsed)
                if self.deadline is not None and len(self._step_times) >= REPLAN_AFTER:
                    self._fit_to_deadline()
                losses[self.step] = loss
                event = {"event": "step", "step": self.step, "total_steps": self.total_steps, "loss": loss,
                         "lr": lr, "tokens_per_s": tokens_per_step / max(elapsed, 1e-9),
                         "eta_s": self._step_time * (self.total_steps - self.step),
                         "epoch": self.position / len(self.train)}
                evaluated = self.val is not None and (
                    (cfg.eval_every and self.step % cfg.eval_every == 0) or self.step == self.total_steps)
                if evaluated:
                    record = self._evaluate()
                    last_eval_step = self.step
                    event.update(val_loss=record["val_loss"], val_ppl=record["val_ppl"])
                    self.model.train()
                self._emit(event)
                if cfg.early_stop_patience and evaluated and self.bad_evals >= cfg.early_stop_patience:
                    reason = "early_stop"
                    break
                if cfg.save_every and self.step % cfg.save_every == 0 and self.step < self.total_steps:
                    self.save()
        finally:
            for handle in guard:
                handle.remove()
            if cfg.gradient_checkpointing:
                disable_gradient_checkpointing(self.model)
            self.model.train(was_training)
        if reason != "cancelled" and self.val is not None and last_eval_step != self.step:
            self._evaluate()
        path = self.save()  # the state the loop ended in, so that a resume continues it
        restored = self._restore_best() if reason != "cancelled" else None
        result = TrainResult(reason=reason, step=self.step, total_steps=self.total_steps, losses=losses,
                             evals=list(self.evals), best_val_loss=self.best_val_loss, best_step=self.best_step,
                             checkpoint=path, restored_step=restored)
        self._emit({"event": "done", "reason": reason, "step": self.step, "best_val_loss": self.best_val_loss,
                    "best_step": self.best_step, "restored_step": restored,
                    "checkpoint": str(path) if path else None})
        return result

    def _measured_step_s(self) -> Optional[float]:
        """Seconds a step takes now: the median of the recent steps after the first (which pays
        one-time costs)."""
        recent = self._step_times[1:][-8:] or self._step_times
        return sorted(recent)[len(recent) // 2] if recent else None

    def _steps_end(self) -> float:
        """When the last step must have ended: the deadline less the final evaluation, timed as
        the last one took (the machine's load changes both alike)."""
        final_eval_s = (self._eval_s or 0.0) if self.val is not None else 0.0
        return self.deadline - final_eval_s

    def _time_guard(self) -> list[Any]:
        """Hooks on every block, forward and backward, that stop a step still running at the
        steps' end: a step can take many times the others on a loaded machine (two threads
        where another job holds a core) and would carry the run far past its budget (measured:
        a 720 s budget ended at 872 s). Only a whole run is timed: not under torchrun, where
        every process must take the same steps."""
        def check(*_args: Any) -> None:
            if time.monotonic() > self._steps_end():
                raise _OutOfTime

        def after_block(_module: nn.Module, _args: Any, output: Any) -> None:
            if not torch.is_grad_enabled():  # an evaluation: its time is reserved, not guarded
                return
            check()
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(check)  # backward: when this block's output gradient is ready

        return [block.register_forward_hook(after_block) for block in self.model.layers]

    def _fit_to_deadline(self) -> None:
        """Re-size the run to the steps that fit before the deadline at the measured speed (the
        schedule decays over the new length): shorter when they do not fit, longer again (up to the
        length the run was given) while the run is in the first GROW_BEFORE of its length."""
        step_s = self._measured_step_s()
        if not step_s:
            return
        evals_left = 1 if self.val is not None else 0  # the final evaluation
        if self.val is not None and self.config.eval_every:
            evals_left += (self.total_steps - self.step) // self.config.eval_every
        one_eval_s = self._eval_s if self._eval_s is not None else \
            step_s * len(self.val) / max(1, 3 * self.config.batch_size * self.config.grad_accum) if self.val else 0.0
        eval_s = evals_left * one_eval_s if self.val is not None else 0.0
        fit = self.step + int(max(0.0, self.deadline - time.monotonic() - eval_s) / step_s)
        given = self.config.total_steps(len(self.train))  # a run re-sized to fewer may grow back to these
        steps = max(min(fit, given), self.step, 1)
        if steps > self.total_steps and (self.step >= GROW_BEFORE * self.total_steps
                                         or steps <= (1 + GROW_MARGIN) * self.total_steps):
            return  # too late to raise a decayed rate again, or within the speed's jitter
        if steps != self.total_steps:
            log.log(logging.INFO if abs(steps - self.total_steps) > 2 else logging.DEBUG,
                    "time budget: %d steps instead of %d at %.1f s a step", steps, self.total_steps, step_s)
            self.total_steps = steps
            self.schedule = WarmupCosine(self.config.lr, min(self.config.warmup_steps, self.total_steps),
                                         self.total_steps, self.schedule.min_lr)

    def _out_of_time(self) -> bool:
        step_s = self._measured_step_s()
        return (self.deadline is not None and step_s is not None and self.step > 0
                and time.monotonic() + step_s > self._steps_end())

    def _restore_best(self) -> Optional[int]:
        """With restore_best, copy the best evaluation's weights back in; the step they are from."""
        if not self.config.restore_best or self._best_state is None or self.best_step == self.step:
            return None
        self._load_trainable(self._best_state)
        log.info("restored the weights of step %d (validation loss %.4f)", self.best_step, self.best_val_loss)
        return self.best_step
