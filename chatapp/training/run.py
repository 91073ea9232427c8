"""One training job from start to finish: what `chatapp train` runs, headless or under torchrun.

    read the data -> load (or create) the model -> tokenize and split -> estimate memory and time
    -> train (checkpoints, evaluations) -> write the adapter or the model folder

Everything the job has to say goes to `emit` as one dict per event (the command writes them as
JSON lines): ingest, dataset, estimate, eval, step, checkpoint, saved. The job returns the
final "end" event; it raises on failure (the command turns that into a "failed" end event).
Long because the job's phases share its state (device, data, settings, trainer) in one function.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..model.lora import LoRAConfig
from .checkpoint import latest_checkpoint
from .dataset import DatasetError
from .distributed import DistContext, DistributedTrainer, ShardedTrainer
from .estimate import estimate_seconds, estimate_training_memory, measure_micro_batch_seconds, suggest_smaller
from .prepare import count_targets, prepare_blocks, read_sources
from .trainer import TrainConfig, Trainer, _autocast

log = logging.getLogger(__name__)

METHODS = ("lora", "full", "scratch")
RECIPES = ("auto", "knowledge", "text")
# --epochs auto: passes over the data wanted (facts need many exposures; plain text fewer),
# bounded by the time budget, and a floor of optimizer steps the budget does not cut: a small
# folder gets enough steps to learn (the estimate shows their time before training starts).
AUTO_EPOCHS = {"knowledge": 8.0, "text": 3.0}
AUTO_MIN_STEPS = {"knowledge": 60, "text": 30}
# The knowledge recipe's defaults (benchmarks/knowledge.py; the README has the experiments):
# facts need capacity and a high rate to be learned within the few passes the time allows.
KNOWLEDGE_LR = {"lora": 2e-3, "full": 1e-4, "scratch": 1e-3}
KNOWLEDGE_LORA = dict(r=32, alpha=64.0, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                      "gate_proj", "up_proj", "down_proj"])
STRATEGIES = ("ddp", "fsdp")
DEFAULT_LR = {"lora": 2e-4, "full": 5e-5, "scratch": 1e-3}
CHECKPOINTS = "checkpoints"
TRAINING_NOTES = "chatapp_training.json"  # beside an exported model: how it was trained, for `eval`

Emit = Callable[[dict[str, Any]], None]


class TrainJobError(RuntimeError):
    """The job cannot run as asked (it would not fit, nothing to resume...); the message says why."""


@dataclass
class TrainJob:
    model: str
    data: list[str]
    out: Path
    method: str = "lora"
    epochs: Optional[float] = None
    max_steps: Optional[int] = None
    lr: Optional[float] = None  # None: DEFAULT_LR[method]
    warmup_steps: Optional[int] = None  # None: 5% of the steps, at most 100
    weight_decay: float = 0.0
    batch_size: int = 4  # global: split between the processes under torchrun
    grad_accum: int = 1
    block_size: int = 256
    lora: Optional[LoRAConfig] = None  # None: the recipe's (RECIPE_LORA, else LoRAConfig())
    eval_every: int = 50
    early_stop: int = 0  # evaluations without improvement before stopping; 0: never
    restore_best: bool = False  # write the best evaluation's weights, not the last (implied by early_stop)
    save_every: int = 0
    keep_checkpoints: int = 2
    val_fraction: float = 0.1
    resume: Optional[Path] = None
    seed: int = 0
    device: str = "auto"
    dry_run: bool = False
    gradient_checkpointing: bool = False
    strategy: str = "ddp"  # under torchrun: "ddp" copies the model to every process, "fsdp" shards it
    size: str = "tiny"  # scratch only
    vocab_size: int = 4096  # scratch only
    max_memory: Optional[int] = None  # bytes; None: what the device has free
    # What the documents become (training/knowledge.py): "knowledge" (questions and answers about
    # their facts, plus the raw text), "text" (the raw text), "auto" (knowledge for documents,
    # the conversations as they are for a .jsonl file).
    recipe: str = "auto"
    examples: Optional[str] = None  # a knowledge examples JSONL to train on instead of making one
    model_examples: bool = True  # knowledge recipe: the model also writes questions and answers
    auto_length: bool = False  # size the run to the data (epochs and max_steps unset), see auto_steps
    time_budget_s: float = 600.0  # with auto_length: the training steps' budget, shown before starting

    def __post_init__(self) -> None:
        self.out = Path(self.out).expanduser()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.data:
            raise ValueError("no data given")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.early_stop < 0:
            raise ValueError(f"early stop must be 0 (off) or a number of evaluations, got {self.early_stop}")
        if self.early_stop:
            self.restore_best = True
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.auto_length and (self.epochs is not None or self.max_steps is not None):
            raise ValueError("automatic length and --epochs/--max-steps exclude each other")
        if self.time_budget_s <= 0:
            raise ValueError(f"the time budget must be positive, got {self.time_budget_s}")


def auto_steps(n_blocks: int, blocks_per_step: int, step_s: Optional[float], budget_s: float,
               epochs: float, min_steps: int) -> int:
    """Optimizer steps for --epochs auto: `epochs` passes over the data, cut to what fits in
    `budget_s` at `step_s` seconds a step (when measured), but never below `min_steps`."""
    steps = math.ceil(epochs * n_blocks / max(1, blocks_per_step))
    if step_s:
        steps = min(steps, int(budget_s / step_s))
    return max(min_steps, steps, 1)


def _resumed_max_steps(resume_from: Optional[Path]) -> Optional[int]:
    """The length a resumed automatic run was given (its checkpoint's train_config.json)."""
    if resume_from is None:
        return None
    try:
        return json.loads((resume_from / "train_config.json").read_text(encoding="utf-8")).get("max_steps")
    except (OSError, ValueError):
        return None


def find_checkpoint(path: Path) -> Path:
    """A checkpoint folder, or the newest under a checkpoints folder or a training output folder."""
    path = Path(path).expanduser()
    if (path / "trainer_state.json").is_file():
        return path
    for root in (path, path / CHECKPOINTS):
        found = latest_checkpoint(root)
        if found is not None:
            return found
    raise TrainJobError(f"{path}: no checkpoint to resume (expected a step-* folder, or a folder holding them)")


def _base_name(spec: str) -> str:
    return spec if spec == "default" else str(Path(spec).expanduser().resolve())


def _eval_summary(evals: list[dict[str, float]], step: int,
                  restored_step: Optional[int] = None) -> tuple[Optional[dict], Optional[dict]]:
    """(evaluation before training, evaluation of the weights written: the last step's, or those
    of `restored_step` where the best were put back); None where there was none."""
    before = evals[0] if evals and evals[0]["step"] == 0 else None
    if restored_step is not None:
        after = next((e for e in evals if e["step"] == restored_step), None)
    else:
        after = evals[-1] if evals and step > 0 and evals[-1]["step"] == step else None
    return before, after


class _Phases:
    """Cancel checks between the phases before training, agreed on by every rank."""

    def __init__(self, cancel: threading.Event, ctx: DistContext, device: torch.device) -> None:
        self.cancel, self.ctx, self.device = cancel, ctx, device

    def cancelled(self) -> bool:
        return self.ctx.any(self.cancel.is_set(), self.device)


def run_training(job: TrainJob, emit: Emit, cancel: Optional[threading.Event] = None,
                 ctx: Optional[DistContext] = None) -> dict[str, Any]:
    from ..engine.device import available_memory, choose_device, default_dtype

    cancel = cancel or threading.Event()
    ctx = ctx or DistContext()
    if job.strategy == "fsdp" and not ctx.enabled:
        raise TrainJobError("--strategy fsdp shards the model between processes: run the command under "
                            "torchrun --nproc_per_node N (with N >= 2)")
    say = emit if ctx.is_main else (lambda event: None)
    device = choose_device(job.device)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
    available = job.max_memory or available_memory(device)  # measured before the model takes its share
    phases = _Phases(cancel, ctx, device)
    ckpt_root = job.out / CHECKPOINTS
    resume_from = find_checkpoint(job.resume) if job.resume is not None else None
    if resume_from is None and latest_checkpoint(ckpt_root) is not None:
        # A fresh run would mix its checkpoints with the old run's (the newest step number wins).
        raise TrainJobError(f"{job.out} already holds checkpoints of an earlier run; continue it with "
                            f"--resume {job.out}, or choose another --out")

    def end(status: str, reason: str, **extra: Any) -> dict[str, Any]:
        return {"event": "end", "status": status, "reason": reason, "out": str(job.out), **extra}

    # -- data -------------------------------------------------------------------------------
    sources = read_sources(job.data)
    say({"event": "ingest", **sources.report})
    if phases.cancelled():
        return end("cancelled", "cancelled before training started")

    # -- model ------------------------------------------------------------------------------
    if job.method == "scratch":
        model, tokenizer, config = _scratch_model(job, sources, ctx, device, ckpt_root, resume_from)
        base_name = None
    else:
        from ..engine.loader import load_model

        dtype = default_dtype(device) if job.method == "lora" else torch.float32  # full: float32 master weights
        loaded = load_model(job.model, device=job.device, dtype=dtype)  # "cuda" is this rank's GPU
        model, tokenizer, config = loaded.model, loaded.tokenizer, loaded.config
        base_name = _base_name(job.model)
    if job.block_size > config.max_seq_len:
        raise TrainJobError(f"--block-size {job.block_size} is longer than the model's context "
                            f"({config.max_seq_len} tokens); choose --block-size {config.max_seq_len} or less")
    if phases.cancelled():
        return end("cancelled", "cancelled before training started")

    recipe = job.recipe if job.recipe != "auto" else ("text" if sources.kind == "chat" else "knowledge")
    if recipe == "knowledge" and sources.kind == "documents":
        from .knowledge import knowledge_data

        data = knowledge_data(job, sources, tokenizer, say, cancel)
        if data is None or phases.cancelled():
            return end("cancelled", "cancelled before training started")
    else:
        if recipe == "knowledge" or job.examples:
            raise TrainJobError("the knowledge recipe (and --examples) makes questions from documents; "
                                "a .jsonl of conversations trains as it is (--recipe text)")
        data = prepare_blocks(sources, tokenizer, job.block_size, job.val_fraction, job.seed)
    say(data.to_event())
    knowledge = data.kind == "knowledge"
    if job.lora is None:
        job.lora = LoRAConfig(**KNOWLEDGE_LORA) if knowledge else LoRAConfig()
    lr = job.lr or (KNOWLEDGE_LR if knowledge else DEFAULT_LR)[job.method]
    if data.train is None or count_targets(data.train) == 0:
        raise DatasetError(None, "nothing to train on: every example went to validation or has no target tokens "
                                 "(add data or lower --val-fraction)")
    if data.val is None and (job.early_stop or job.restore_best):
        option = "--early-stop" if job.early_stop else "--restore-best"
        raise TrainJobError(f"{option} needs held-out data to evaluate, but none was held out "
                            f"(--val-fraction {job.val_fraction:g}); raise --val-fraction or add documents")

    # -- settings and estimate -------------------------------------------------------------
    method = "full" if job.method == "scratch" else job.method
    cfg = TrainConfig(method=method, lr=lr, weight_decay=job.weight_decay,
                      max_steps=job.max_steps, epochs=job.epochs, batch_size=job.batch_size,
                      grad_accum=job.grad_accum, eval_every=job.eval_every, save_every=job.save_every,
                      keep_checkpoints=job.keep_checkpoints, seed=job.seed, block_size=job.block_size,
                      gradient_checkpointing=job.gradient_checkpointing, lora=job.lora, warmup_steps=0,
                      early_stop_patience=job.early_stop, restore_best=job.restore_best)
    if job.auto_length:
        resumed = _resumed_max_steps(resume_from)
        cfg.max_steps = resumed or auto_steps(len(data.train), job.batch_size * job.grad_accum, None,
                                              job.time_budget_s, AUTO_EPOCHS[recipe], AUTO_MIN_STEPS[recipe])
    total_steps = cfg.total_steps(len(data.train))
    warmup = job.warmup_steps if job.warmup_steps is not None else min(100, total_steps // 20)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "warmup_steps": warmup})

    per_rank = max(1, job.batch_size // ctx.world_size)
    weight_dtype = next(model.parameters()).dtype
    activation_dtype = torch.bfloat16 if device.type == "cuda" and cfg.bf16 else weight_dtype
    shards = ctx.world_size if job.strategy == "fsdp" else 1
    memory = estimate_training_memory(config, method, job.lora, per_rank, job.block_size, weight_dtype,
                                      activation_dtype, job.gradient_checkpointing, shards=shards)
    estimate = {"event": "estimate", "memory_bytes": memory.total_bytes, "available_bytes": available,
                "fits": available is None or memory.total_bytes <= available, "memory": memory.to_dict(),
                "device": str(device), "processes": ctx.world_size, "total_steps": total_steps,
                "tokens_per_step": job.batch_size * job.grad_accum * job.block_size, "eta_s": None}
    if not estimate["fits"]:
        say(estimate)
        hint = suggest_smaller(config, method, job.lora, per_rank, job.block_size, available,
                               weight_dtype=weight_dtype, activation_dtype=activation_dtype,
                               gradient_checkpointing=job.gradient_checkpointing)
        raise TrainJobError(f"training needs about {memory.describe()} per process but only "
                            f"{available / 1024**3:.2f} GiB is available on {device.type}; {hint}")

    progress = _ProgressRelay(say)
    trainer_cls = (ShardedTrainer if job.strategy == "fsdp" else DistributedTrainer) if ctx.enabled else Trainer
    extra = {"ctx": ctx} if ctx.enabled else {}
    trainer = trainer_cls(model, cfg, data.train, data.val, ckpt_root, progress, cancel, **extra)
    inputs, labels = data.train.batch(torch.arange(min(per_rank, len(data.train))))
    micro_s = measure_micro_batch_seconds(model, inputs, labels, _autocast(device, cfg.bf16))
    n_evals = (2 + (total_steps // cfg.eval_every if cfg.eval_every else 0)) if data.val is not None else 0
    estimate["micro_batch_s"] = micro_s
    if job.auto_length and _resumed_max_steps(resume_from) is None and not ctx.enabled:
        # The measured speed bounds the run by the time budget; the trainer is rebuilt for the
        # new length (its LoRA layers, already on the model, are kept).
        steps = auto_steps(len(data.train), job.batch_size * job.grad_accum, micro_s * cfg.grad_accum,
                           job.time_budget_s, AUTO_EPOCHS[recipe], AUTO_MIN_STEPS[recipe])
        if steps != total_steps:
            total_steps = steps
            warmup = job.warmup_steps if job.warmup_steps is not None else min(100, total_steps // 20)
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "max_steps": total_steps, "warmup_steps": warmup})
            trainer = trainer_cls(model, cfg, data.train, data.val, ckpt_root, progress, cancel, **extra)
            n_evals = (2 + (total_steps // cfg.eval_every if cfg.eval_every else 0)) if data.val is not None else 0
        estimate["total_steps"] = total_steps
        estimate["time_budget_s"] = job.time_budget_s
        estimate["epochs"] = round(total_steps * job.batch_size * job.grad_accum / len(data.train), 2)
    estimate["eta_s"] = estimate_seconds(micro_s, cfg.grad_accum, total_steps,
                                         len(data.val) if data.val is not None else 0, cfg.eval_batch_size, n_evals)
    say(estimate)
    if job.dry_run:
        return end("completed", "dry_run")
    if phases.cancelled():
        return end("cancelled", "cancelled before training started")

    # -- training ---------------------------------------------------------------------------
    result = trainer.fit(resume_from=resume_from)
    # The evaluation of the weights written: the last, or the best one put back (restore_best).
    before, after = _eval_summary(result.evals, result.step, result.restored_step)
    summary = {"step": result.step, "total_steps": result.total_steps, "best_step": result.best_step,
               "restored_step": result.restored_step,
               "val_ppl_before": before["val_ppl"] if before else None,
               "val_ppl_after": after["val_ppl"] if after else None,
               "val_loss_before": before["val_loss"] if before else None,
               "val_loss_after": after["val_loss"] if after else None,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None}
    if result.reason == "cancelled":
        return end("cancelled", f"cancelled at step {result.step}; resume with --resume {ckpt_root}", **summary)

    # -- outputs ----------------------------------------------------------------------------
    if isinstance(trainer, ShardedTrainer):
        whole = trainer.whole_model_state()  # every rank takes part; rank 0 gets the tensors
        model = _unsharded(config, job, whole) if ctx.is_main else None
    if ctx.is_main:
        notes = {"method": job.method, "recipe": recipe, "base_model": base_name, "data": [str(Path(d).resolve()) for d in job.data],
                 "data_kind": data.kind, "data_fingerprint": data.fingerprint, "seed": job.seed,
                 "val_fraction": job.val_fraction, "block_size": job.block_size, "steps": result.step,
                 "eval_before": before, "eval_after": after, "best_val_loss": result.best_val_loss,
                 "best_step": result.best_step, "restored_step": result.restored_step,
                 "processes": ctx.world_size, "train_config": cfg.to_dict()}
        _save_outputs(job, model, tokenizer, config, notes, base_name)
        say({"event": "saved", "kind": "adapter" if job.method == "lora" else "hf-folder", "path": str(job.out)})
    ctx.barrier()
    return end("completed", result.reason, **summary)


class _ProgressRelay:
    """Trainer events -> job events: an evaluation inside a step event also gets its own "eval" line."""

    def __init__(self, say: Emit) -> None:
        self.say = say

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "done":
            return  # the job's "end" says it, with the outputs
        self.say(event)
        if kind == "step" and "val_loss" in event:
            self.say({"event": "eval", "step": event["step"], "val_loss": event["val_loss"],
                      "val_ppl": event["val_ppl"]})


def _scratch_model(job: TrainJob, sources, ctx: DistContext, device: torch.device, ckpt_root: Path,
                   resume_from: Optional[Path]):
    """(model, tokenizer, config) for --method scratch. The tokenizer is trained once (rank 0),
    kept beside the checkpoints and read back from there, so resumes and other ranks share it."""
    from ..text import Tokenizer
    from .scratch import new_model, save_tokenizer, scratch_config, train_tokenizer

    folder = ckpt_root / "tokenizer"
    previous = resume_from.parent / "tokenizer" if resume_from is not None else None
    if ctx.is_main:
        if previous is not None and (previous / "tokenizer.json").is_file():
            tokenizer = Tokenizer.from_hf_folder(previous)
        elif (folder / "tokenizer.json").is_file() and resume_from is not None:
            tokenizer = Tokenizer.from_hf_folder(folder)
        else:
            train_examples, _ = sources.split(job.val_fraction, job.seed)  # validation stays unseen
            texts = [t for e in (train_examples or sources.examples) for t in e.texts()]
            tokenizer = train_tokenizer(texts, job.vocab_size)
        save_tokenizer(tokenizer, folder)
    ctx.barrier()
    tokenizer = Tokenizer.from_hf_folder(folder)
    config = scratch_config(job.size, tokenizer.vocab_size, job.block_size)
    return new_model(config, job.seed, device), tokenizer, config


def _unsharded(config, job: TrainJob, whole: dict[str, torch.Tensor]):
    """A plain model (and its LoRA layers) holding the whole tensors gathered from a sharded one."""
    from ..model.lora import apply_lora
    from ..weights.build import build_model

    base = {n: t for n, t in whole.items() if ".lora_" not in n}
    if config.tie_embeddings:
        base.pop("lm_head.weight", None)  # the same tensor as tok_embeddings.weight
    model = build_model(config, base)
    if job.method == "lora":
        apply_lora(model, job.lora, dtype=torch.float32)
        missing, unexpected = model.load_state_dict({n: t for n, t in whole.items() if ".lora_" in n}, strict=False)
        if unexpected or any(".lora_" in n for n in missing):
            raise RuntimeError(f"gathered LoRA tensors do not fit the model: {unexpected or missing}")
    return model


def _save_outputs(job: TrainJob, model, tokenizer, config, notes: dict[str, Any], base_name: Optional[str]) -> None:
    if job.method == "lora":
        from ..weights.peft_adapter import save_adapter

        save_adapter(model, job.lora, job.out, base_name or "", metadata=notes)
        return
    from .export import export_hf_folder

    model.eval()
    export_hf_folder(model, config, tokenizer, job.out,
                     extra_files={TRAINING_NOTES: json.dumps(notes, indent=2, default=str) + "\n"})

