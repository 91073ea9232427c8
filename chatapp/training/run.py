"""One training job from start to finish: what `chatapp train` runs, headless or under torchrun.

    read the data -> load (or create) the model -> tokenize and split -> estimate memory and time
    -> train (checkpoints, evaluations) -> write the adapter or the model folder

Everything the job has to say goes to `emit` as one typed event (training/protocol.py; the
command writes them as JSON lines): ingest, dataset, estimate, eval, step, checkpoint, saved.
The job returns the final `EndEvent`; it raises on failure (the command turns that into a
"failed" end event).
Long because the job's phases share its state (device, data, settings, trainer) in one function.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..model.lora import LoRAConfig
from .dataset import DatasetError
from .distributed import DistContext, DistributedTrainer, ShardedTrainer
from .estimate import (blocks_bytes, estimate_seconds, estimate_training_memory, measure_micro_batch_seconds,
                       parse_bytes, suggest_smaller, tokenization_bytes)
from .checkpoint import latest_readable_checkpoint
from .outputs import latest_checkpoint
from .prepare import count_targets, prepare_blocks, read_sources
from .protocol import (AUTO_EPOCHS, AUTO_MIN_STEPS, CANCELLED, CHECKPOINTS, COMPLETED,  # noqa: F401
                       TRAINING_NOTES, CheckpointEvent, DatasetEvent, EndEvent, EstimateEvent, EvalEvent, Event,
                       IngestEvent, SavedEvent, StepEvent, TrainJob)
from .trainer import TrainConfig, Trainer, _autocast, cpu_has_bf16

log = logging.getLogger(__name__)

Emit = Callable[[Event], None]


class TrainJobError(RuntimeError):
    """The job cannot run as asked (it would not fit, nothing to resume...); the message says why."""


def lora_config(job: TrainJob, recipe: str = "text") -> LoRAConfig:
    """The adapter's shape: the options given, else the recipe's defaults (training/protocol.py)."""
    rank, alpha, targets = job.lora_settings(recipe)
    return LoRAConfig(r=rank, alpha=alpha, dropout=job.lora_dropout, target_modules=targets)


def weight_dtype_is_float32(model: torch.nn.Module) -> bool:
    """A float32 base (not int8/int4 compact weights, which run their own products)."""
    return next(model.parameters()).dtype == torch.float32 and not any(
        type(m).__name__ == "QuantLinear" for m in model.modules())


def auto_steps(n_blocks: int, blocks_per_step: int, step_s: Optional[float], budget_s: float,
               epochs: float, min_steps: int) -> int:
    """Optimizer steps for --epochs auto: `epochs` passes over the data and at least `min_steps`
    (a small folder gets enough steps to learn), cut to what fits in `budget_s` at `step_s`
    seconds a step when measured: the budget wins over the floor."""
    steps = max(min_steps, math.ceil(epochs * n_blocks / max(1, blocks_per_step)))
    if step_s:
        steps = min(steps, int(budget_s / step_s))
    return max(steps, 1)


# --epochs auto bounds the whole run, from start to the adapter written, by --time-budget:
# making the knowledge examples may take this share of it (the model answering is the slow part),
# and the end (final evaluation, saving) is kept this many seconds.
EXAMPLES_SHARE = 0.25
END_RESERVE_S = 15.0


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
        if latest_checkpoint(root) is None:
            continue
        found = latest_readable_checkpoint(root)  # a corrupt newest one falls back to the one before
        if found is None:
            raise TrainJobError(f"{root}: every checkpoint is corrupt or incomplete; nothing to resume "
                                "(see the log for each one's problem)")
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
                 ctx: Optional[DistContext] = None) -> EndEvent:
    from ..engine.device import available_memory, choose_device, default_dtype

    run_started = time.monotonic()  # --epochs auto: the time budget counts from here
    cancel = cancel or threading.Event()
    ctx = ctx or DistContext()
    if job.strategy == "fsdp" and not ctx.enabled:
        raise TrainJobError("--strategy fsdp shards the model between processes: run the command under "
                            "torchrun --nproc_per_node N (with N >= 2)")
    say = emit if ctx.is_main else (lambda event: None)
    device = choose_device(job.device)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
    available = parse_bytes(job.max_memory) if job.max_memory else available_memory(device)  # measured before the model takes its share
    phases = _Phases(cancel, ctx, device)
    ckpt_root = job.out / CHECKPOINTS
    resume_from = find_checkpoint(job.resume) if job.resume is not None else None
    if resume_from is None and latest_checkpoint(ckpt_root) is not None:
        # A fresh run would mix its checkpoints with the old run's (the newest step number wins).
        raise TrainJobError(f"{job.out} already holds checkpoints of an earlier run; continue it with "
                            f"--resume {job.out}, or choose another --out")

    def end(status: str, reason: str, **extra: Any) -> EndEvent:
        return EndEvent(status=status, reason=reason, out=str(job.out), **extra)

    # -- data -------------------------------------------------------------------------------
    started = time.perf_counter()
    sources = read_sources(job.data)
    prepare_s = time.perf_counter() - started  # reading and tokenizing the data (a run does it again)
    say(IngestEvent.from_dict(sources.report))
    if phases.cancelled():
        return end(CANCELLED, "cancelled before training started")

    # -- model ------------------------------------------------------------------------------
    if job.method == "scratch":
        model, tokenizer, config = _scratch_model(job, sources, ctx, device, ckpt_root, resume_from)
        base_name = None
    else:
        from ..engine.loader import load_model

        dtype = default_dtype(device) if job.method == "lora" else torch.float32  # full: float32 master weights
        if job.weights in ("int8", "int4"):  # LoRA over a compact base (chatapp/model/lora.py)
            loaded = load_model(job.model, device=job.device, weights=job.weights, decode_step="eager")
        else:
            loaded = load_model(job.model, device=job.device, dtype=dtype, decode_step="eager")  # "cuda" is this rank's GPU
        model, tokenizer, config = loaded.model, loaded.tokenizer, loaded.config
        base_name = _base_name(job.model)
    if job.block_size > config.max_seq_len:
        raise TrainJobError(f"--block-size {job.block_size} is longer than the model's context "
                            f"({config.max_seq_len} tokens); choose --block-size {config.max_seq_len} or less")
    if phases.cancelled():
        return end(CANCELLED, "cancelled before training started")

    recipe = job.resolved_recipe(sources.kind)
    started = time.perf_counter()
    if recipe == "knowledge" and sources.kind == "documents":
        from .knowledge import knowledge_data

        examples_s = EXAMPLES_SHARE * job.time_budget_s if job.auto_length else None
        data = knowledge_data(job, sources, tokenizer, say, cancel, max_generate_s=examples_s)
        if data is None or phases.cancelled():
            return end(CANCELLED, "cancelled before training started")
    else:
        if recipe == "knowledge" or job.examples:
            raise TrainJobError("the knowledge recipe (and --examples) makes questions from documents; "
                                "a .jsonl of conversations trains as it is (--recipe text)")
        data = prepare_blocks(sources, tokenizer, job.block_size, job.val_fraction, job.seed)
    prepare_s += time.perf_counter() - started
    say(DatasetEvent.from_dict(data.to_event()))
    if data.train is None or count_targets(data.train) == 0:
        raise DatasetError(None, "nothing to train on: every example went to validation or has no target tokens "
                                 "(add data or lower --val-fraction)")
    if data.val is None and (job.early_stop or job.restore_best):
        option = "--early-stop" if job.early_stop else "--restore-best"
        raise TrainJobError(f"{option} needs held-out data to evaluate, but none was held out "
                            f"(--val-fraction {job.val_fraction:g}); raise --val-fraction or add documents")

    # -- settings and estimate -------------------------------------------------------------
    method = "full" if job.method == "scratch" else job.method
    lora = lora_config(job, recipe)
    cfg = TrainConfig(method=method, lr=job.peak_lr_for(recipe), weight_decay=job.weight_decay,
                      max_steps=job.max_steps, epochs=job.fixed_epochs, batch_size=job.batch_size,
                      grad_accum=job.grad_accum, eval_every=job.eval_every, save_every=job.save_every,
                      keep_checkpoints=job.keep_checkpoints, seed=job.seed, block_size=job.block_size,
                      gradient_checkpointing=job.gradient_checkpointing, lora=lora, warmup_steps=0,
                      early_stop_patience=job.early_stop, restore_best=job.restore_best,
                      cpu_bf16=method == "lora" and device.type == "cpu" and not job.no_bf16
                      and weight_dtype_is_float32(model) and cpu_has_bf16())
    if job.auto_length:
        cfg.max_steps = _resumed_max_steps(resume_from) or auto_steps(
            len(data.train), job.batch_size * job.grad_accum, None, job.time_budget_s, AUTO_EPOCHS[recipe],
            AUTO_MIN_STEPS[recipe])
    total_steps = cfg.total_steps(len(data.train))
    warmup = job.warmup_steps if job.warmup_steps is not None else min(100, total_steps // 20)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "warmup_steps": warmup})

    per_rank = max(1, job.batch_size // ctx.world_size)
    compact = job.weights if job.weights in ("int8", "int4") and job.method == "lora" else None
    weight_dtype = next(model.parameters()).dtype
    activation_dtype = torch.bfloat16 if device.type == "cuda" and cfg.bf16 else weight_dtype
    shards = ctx.world_size if job.strategy == "fsdp" else 1
    n_tokens = sum(b.tokens.numel() for b in (data.train, data.val) if b is not None)
    memory = estimate_training_memory(config, method, lora, per_rank, job.block_size, weight_dtype,
                                      activation_dtype, job.gradient_checkpointing, shards=shards,
                                      data_bytes=blocks_bytes(data.train, data.val),
                                      tokenize_bytes=tokenization_bytes(n_tokens), compact=compact)
    estimate = EstimateEvent(memory_bytes=memory.total_bytes, available_bytes=available,
                             fits=available is None or memory.total_bytes <= available, memory=memory.to_dict(),
                             device=str(device), processes=ctx.world_size, total_steps=total_steps,
                             tokens_per_step=job.batch_size * job.grad_accum * job.block_size, recipe=recipe,
                             prepare_s=round(prepare_s, 3))
    if not estimate.fits:
        say(estimate)
        hint = suggest_smaller(config, method, lora, per_rank, job.block_size, available,
                               weight_dtype=weight_dtype, activation_dtype=activation_dtype,
                               gradient_checkpointing=job.gradient_checkpointing,
                               data_bytes=memory.data_bytes, tokenize_bytes=memory.tokenize_bytes,
                               compact=compact)
        raise TrainJobError(f"training needs about {memory.describe()} per process but only "
                            f"{available / 1024**3:.2f} GiB is available on {device.type}; {hint}")

    progress = _ProgressRelay(say)
    trainer_cls = (ShardedTrainer if job.strategy == "fsdp" else DistributedTrainer) if ctx.enabled else Trainer
    extra = {"ctx": ctx} if ctx.enabled else {}
    trainer = trainer_cls(model, cfg, data.train, data.val, ckpt_root, progress, cancel, **extra)
    inputs, labels = data.train.batch(torch.arange(min(per_rank, len(data.train))))
    micro_s = measure_micro_batch_seconds(model, inputs, labels, _autocast(device, cfg.bf16, cfg.cpu_bf16))
    n_evals = (2 + (total_steps // cfg.eval_every if cfg.eval_every else 0)) if data.val is not None else 0
    estimate.micro_batch_s = micro_s
    if job.auto_length and _resumed_max_steps(resume_from) is None and not ctx.enabled:
        # The measured speed bounds the run by the time budget; the trainer is rebuilt for the
        # new length (its LoRA layers, already on the model, are kept).
        # What is left of the budget after the examples, the model's loading and this measure.
        # The evaluations before and after training are a forward pass over the held-out blocks
        # each (a third of forward+backward per block, as estimate_seconds counts them).
        evals_s = 2 * (micro_s / 3) * len(data.val) / max(1, len(inputs)) if data.val is not None else 0.0
        left_s = job.time_budget_s - (time.monotonic() - run_started) - END_RESERVE_S - evals_s
        steps = auto_steps(len(data.train), job.batch_size * job.grad_accum, micro_s * cfg.grad_accum,
                           max(0.0, left_s), AUTO_EPOCHS[recipe], AUTO_MIN_STEPS[recipe])
        if steps != total_steps:
            total_steps = steps
            warmup = job.warmup_steps if job.warmup_steps is not None else min(100, total_steps // 20)
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "max_steps": total_steps, "warmup_steps": warmup})
            trainer = trainer_cls(model, cfg, data.train, data.val, ckpt_root, progress, cancel, **extra)
            n_evals = (2 + (total_steps // cfg.eval_every if cfg.eval_every else 0)) if data.val is not None else 0
        estimate.total_steps = total_steps
    if job.auto_length:
        estimate.time_budget_s = job.time_budget_s
        estimate.epochs = round(total_steps * job.batch_size * job.grad_accum / len(data.train), 2)
    estimate.eta_s, estimate.eta_low_s, estimate.eta_high_s = estimate_seconds(
        micro_s, cfg.grad_accum, total_steps, len(data.val) if data.val is not None else 0, len(inputs), n_evals,
        prepare_s)
    say(estimate)
    if job.dry_run:
        return end(COMPLETED, "dry_run")
    if phases.cancelled():
        return end(CANCELLED, "cancelled before training started")

    # -- training ---------------------------------------------------------------------------
    if job.auto_length and _resumed_max_steps(resume_from) is None and not ctx.enabled:
        # The steps' real speed (the load of the machine changes) re-sizes the run after its
        # first steps, and no step starts that would end after the budget.
        trainer.deadline = run_started + job.time_budget_s - END_RESERVE_S
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
        return end(CANCELLED, f"cancelled at step {result.step}", **summary)

    # -- outputs ----------------------------------------------------------------------------
    if isinstance(trainer, ShardedTrainer):
        whole = trainer.whole_model_state()  # every rank takes part; rank 0 gets the tensors
        model = _unsharded(config, job, whole, lora) if ctx.is_main else None
    if ctx.is_main:
        notes = {"method": job.method, "recipe": recipe, "base_model": base_name, "data": [str(Path(d).resolve()) for d in job.data],
                 "data_kind": data.kind, "data_fingerprint": data.fingerprint, "seed": job.seed,
                 "val_fraction": job.val_fraction, "block_size": job.block_size, "steps": result.step,
                 "eval_before": before, "eval_after": after, "best_val_loss": result.best_val_loss,
                 "best_step": result.best_step, "restored_step": result.restored_step,
                 "processes": ctx.world_size, "train_config": cfg.to_dict()}
        _save_outputs(job, model, tokenizer, config, notes, base_name, lora)
        say(SavedEvent(kind="adapter" if job.method == "lora" else "hf-folder", path=str(job.out)))
    ctx.barrier()
    return end(COMPLETED, result.reason, **summary)


class _ProgressRelay:
    """Trainer events -> job events: an evaluation inside a step event also gets its own "eval" line."""

    def __init__(self, say: Emit) -> None:
        self.say = say

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "done":
            return  # the job's "end" says it, with the outputs
        typed = {"step": StepEvent, "eval": EvalEvent, "checkpoint": CheckpointEvent}[kind].from_dict(event)
        self.say(typed)
        if isinstance(typed, StepEvent) and typed.val_loss is not None:
            self.say(EvalEvent(step=typed.step, val_loss=typed.val_loss, val_ppl=typed.val_ppl))


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


def _unsharded(config, job: TrainJob, whole: dict[str, torch.Tensor], lora):
    """A plain model (and its LoRA layers) holding the whole tensors gathered from a sharded one."""
    from ..model.lora import apply_lora, base_names
    from ..weights.build import build_model

    base = base_names({n: t for n, t in whole.items() if ".lora_" not in n})
    if config.tie_embeddings:
        base.pop("lm_head.weight", None)  # the same tensor as tok_embeddings.weight
    model = build_model(config, base)
    if job.method == "lora":
        apply_lora(model, lora, dtype=torch.float32)
        missing, unexpected = model.load_state_dict({n: t for n, t in whole.items() if ".lora_" in n}, strict=False)
        if unexpected or any(".lora_" in n for n in missing):
            raise RuntimeError(f"gathered LoRA tensors do not fit the model: {unexpected or missing}")
    return model


def _save_outputs(job: TrainJob, model, tokenizer, config, notes: dict[str, Any], base_name: Optional[str],
                  lora) -> None:
    if job.method == "lora":
        from ..weights.peft_adapter import save_adapter

        save_adapter(model, lora, job.out, base_name or "", metadata=notes)
        return
    from .export import export_hf_folder

    model.eval()
    export_hf_folder(model, config, tokenizer, job.out,
                     extra_files={TRAINING_NOTES: json.dumps(notes, indent=2, default=str) + "\n"})

