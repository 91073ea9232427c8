"""`chatapp train`, `chatapp eval` and `chatapp export`.

`chatapp train --progress jsonl` is what the window runs as a child process (and what a cluster
runs under torchrun): stdout then carries only JSON objects, one per line, ending with

    {"event": "end", "status": "completed" | "cancelled" | "failed", "reason": ..., "out": ...}

Exit status: 0 completed or cancelled (SIGTERM or Ctrl-C: the step in flight finishes, a
checkpoint is written, `--resume OUT` continues), 1 failed, 2 usage error. A second signal
stops at once, without a checkpoint. Without --progress, one readable line per event goes to
stderr and a summary to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1
SECOND_SIGNAL_GRACE_S = 1.0
LORA_TARGET_HELP = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


# ---------------------------------------------------------------------------- progress

def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def format_event(event: dict[str, Any]) -> Optional[str]:
    """One readable line for an event, or None for events not worth a line."""
    kind = event.get("event")
    gib = 1024**3
    if kind == "ingest":
        return f"data: {event.get('summary', '')}"
    if kind == "dataset":
        return (f"blocks: {event['train_blocks']} for training ({event['train_tokens']} tokens), "
                f"{event['val_blocks']} for validation ({event['val_tokens']} tokens)")
    if kind == "estimate":
        avail = event.get("available_bytes")
        line = (f"estimate: {event['memory_bytes'] / gib:.2f} GiB of "
                f"{avail / gib:.2f} GiB available" if avail else f"estimate: {event['memory_bytes'] / gib:.2f} GiB")
        line += f", {event['total_steps']} steps, about {_duration(event.get('eta_s'))}"
        if event.get("time_budget_s"):
            line += (f" (--epochs auto: {event['epochs']:g} passes over the data; time budget "
                     f"{_duration(event['time_budget_s'])}, a small folder gets at least its minimum of steps)")
        return line
    if kind == "eval":
        return f"step {event['step']}: validation loss {event['val_loss']:.4f}, perplexity {event['val_ppl']:.2f}"
    if kind == "step":
        return (f"step {event['step']}/{event['total_steps']}  loss {event['loss']:.4f}  lr {event['lr']:.2e}  "
                f"{event['tokens_per_s']:.0f} tok/s  eta {_duration(event.get('eta_s'))}")
    if kind == "examples":
        if "path" in event:
            return f"examples: {event['examples']} ({event['kinds']}) in {event['seconds']:.0f}s, written to {event['path']}"
        return f"examples: the model answered {event['done']}/{event['total']} questions with the passage"
    if kind == "checkpoint":
        return f"checkpoint: {event['path']}"
    if kind == "saved":
        return f"saved {event['kind']}: {event['path']}"
    return None


class ProgressWriter:
    """Events -> JSON lines on `stream`, or readable lines on stderr."""

    def __init__(self, jsonl: bool, stream) -> None:
        self.jsonl = jsonl
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            if self.jsonl:
                self.stream.write(json.dumps(_json_safe(event), ensure_ascii=False, allow_nan=False) + "\n")
                self.stream.flush()
            else:
                line = format_event(event)
                if line:
                    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _signals_cancel(cancel: threading.Event):
    """SIGTERM and SIGINT ask the job to stop after the current step; a second one stops now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    first: list[float] = []

    def handler(signum, _frame):
        # Under torchrun a Ctrl-C reaches each rank twice (from the terminal and forwarded by
        # torchrun): only a signal well after the first one means "stop now".
        if first and time.monotonic() - first[0] > SECOND_SIGNAL_GRACE_S:
            raise KeyboardInterrupt
        if not first:
            first.append(time.monotonic())
            log.warning("%s: stopping after this step and writing a checkpoint (again to stop at once)",
                        signal.Signals(signum).name)
        cancel.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _stdout_to_stderr():
    """While a JSON-lines job runs, anything printed goes to stderr: stdout is the protocol."""
    original = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield original
    finally:
        sys.stdout = original


# ---------------------------------------------------------------------------- train

def _epochs(text: str):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of passes or 'auto', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"epochs must be positive, got {text}")
    return value


def _targets(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a model on documents or conversations (or train one from scratch)",
        description="Fine-tune MODEL on a folder or files of documents, or on a .jsonl file of conversations "
                    "({\"messages\": [...]} per line: only the assistant's turns are learned). LoRA writes a "
                    "PEFT adapter to --out; full and scratch write a Hugging Face model folder. Runs the same "
                    "under `torchrun --nproc_per_node N -m chatapp train ...` (data parallel; --batch-size is "
                    "the global batch).")
    p.add_argument("--model", default="default", help="'default', a .gguf file or a Hugging Face folder "
                                                      "(ignored with --method scratch)")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="document folders/files, or one .jsonl chat file")
    p.add_argument("--out", required=True, metavar="DIR", help="where the adapter or model and checkpoints/ go")
    p.add_argument("--method", default="lora", choices=("lora", "full", "scratch"))
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_epochs, default=None,  # None: auto (unless --max-steps)
                        help="passes over the data, or 'auto' (default): sized to the data, a small folder "
                             "gets enough steps to learn, a large one is bounded by --time-budget")
    length.add_argument("--max-steps", type=int, default=None, help="optimizer steps")
    p.add_argument("--time-budget", type=float, default=10.0, metavar="MINUTES",
                   help="with --epochs auto: the most minutes of training steps (default 10), for a large "
                        "folder (a small one still gets 60 steps, 30 with --recipe text); the steps and the "
                        "time are in the estimate shown before training starts")
    p.add_argument("--recipe", default="auto", choices=("auto", "knowledge", "text"),
                   help="knowledge: documents become questions and answers about their facts (written by "
                        "templates and by the model itself) plus the raw text, so the model answers from "
                        "them without the documents; text: the raw text only; auto (default): knowledge "
                        "for documents, text for a .jsonl of conversations")
    p.add_argument("--examples", default=None, metavar="FILE",
                   help="train on this knowledge examples JSONL (e.g. an edited OUT/knowledge_examples.jsonl "
                        "of an earlier run) instead of making new ones")
    p.add_argument("--no-model-examples", action="store_true",
                   help="knowledge recipe: only the examples made by templates (faster), none written by the model")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 2e-4 lora, 5e-5 full, 1e-3 scratch; knowledge recipe: "
                        "2e-3 lora, 1e-4 full)")
    p.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of the steps, at most 100")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=4, help="blocks per micro-batch, across all processes")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--block-size", type=int, default=256, help="tokens per block")
    p.add_argument("--lora-rank", type=int, default=None,
                   help="default 8 (knowledge recipe: 32, with --lora-alpha 64 on every projection)")
    p.add_argument("--lora-alpha", type=float, default=None, help="default 16")
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--lora-targets", type=_targets, default=None, metavar="LIST",
                   help=f"comma-separated, from {LORA_TARGET_HELP} (default q_proj,v_proj; knowledge recipe: all)")
    p.add_argument("--eval-every", type=int, default=50, help="steps between evaluations (0: before and after)")
    p.add_argument("--early-stop", type=int, default=0, metavar="N",
                   help="stop after N evaluations in a row without a lower held-out loss, and write the "
                        "best evaluation's weights (0: off)")
    p.add_argument("--restore-best", action="store_true",
                   help="write the weights of the evaluation with the lowest held-out loss, not the last")
    p.add_argument("--save-every", type=int, default=0, help="steps between checkpoints (0: at the end and on cancel)")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="newest checkpoints kept (0: all)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of documents held out for validation")
    p.add_argument("--resume", default=None, metavar="DIR", help="a checkpoint, or a folder of them, to continue")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", choices=("jsonl",), default=None,
                   help="jsonl: stdout carries only JSON progress events, one per line")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: automatic)")
    p.add_argument("--dry-run", action="store_true", help="stop after the memory and time estimate")
    p.add_argument("--strategy", default="ddp", choices=("ddp", "fsdp"),
                   help="under torchrun: ddp keeps a whole model in every process, fsdp shards weights, "
                        "gradients and optimizer state between them (for models too large for one)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations: less memory")
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="memory the job may use, e.g. 6G (default: what the device has free)")
    p.add_argument("--size", default="tiny", choices=("tiny", "small", "medium"), help="model size for scratch")
    p.add_argument("--vocab-size", type=int, default=4096, help="tokenizer vocabulary for scratch")
    p.set_defaults(func=cmd_train)


def _set_threads(threads: int) -> None:
    import torch

    from ..engine.device import default_threads

    if threads:
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, default_threads() // local))


def _job_from_args(args: argparse.Namespace):
    from ..model.lora import LoRAConfig
    from ..training.estimate import parse_bytes
    from ..training.run import TrainJob

    lora = None  # none of the LoRA options given: the recipe's defaults (training/run.py)
    if (args.lora_rank, args.lora_alpha, args.lora_targets) != (None, None, None):
        lora = LoRAConfig(r=args.lora_rank or 8, alpha=args.lora_alpha or 16.0, dropout=args.lora_dropout,
                          target_modules=args.lora_targets or ["q_proj", "v_proj"])
    auto_length = args.epochs in (None, "auto") and args.max_steps is None
    epochs = None if args.epochs in (None, "auto") else args.epochs
    if args.time_budget <= 0:
        raise ValueError(f"--time-budget must be a positive number of minutes, got {args.time_budget:g}")
    return TrainJob(model=args.model, data=list(args.data), out=args.out, method=args.method, epochs=epochs,
                    recipe=args.recipe, examples=args.examples, model_examples=not args.no_model_examples, auto_length=auto_length,
                    time_budget_s=60.0 * args.time_budget,
                    max_steps=args.max_steps, lr=args.lr, warmup_steps=args.warmup_steps,
                    weight_decay=args.weight_decay, batch_size=args.batch_size, grad_accum=args.grad_accum,
                    block_size=args.block_size, lora=lora, eval_every=args.eval_every, save_every=args.save_every,
                    early_stop=args.early_stop, restore_best=args.restore_best, strategy=args.strategy,
                    keep_checkpoints=args.keep_checkpoints, val_fraction=args.val_fraction, resume=args.resume,
                    seed=args.seed, device=args.device, dry_run=args.dry_run,
                    gradient_checkpointing=args.gradient_checkpointing, size=args.size, vocab_size=args.vocab_size,
                    max_memory=parse_bytes(args.max_memory) if args.max_memory else None)


def _failure_reason(exc: BaseException) -> str:
    import torch

    from ..engine.device import DeviceError
    from ..errors import ModelLoadError
    from ..training.dataset import DatasetError
    from ..training.documents import IngestError
    from ..training.run import TrainJobError

    if isinstance(exc, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return ("out of memory during training; try a smaller --batch-size (with --grad-accum to keep the "
                "effective batch), a smaller --block-size, or --gradient-checkpointing")
    if isinstance(exc, (ModelLoadError, DatasetError, IngestError, TrainJobError, DeviceError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def cmd_train(args: argparse.Namespace, run: Optional[Callable[..., dict]] = None) -> int:
    jsonl = args.progress == "jsonl"
    cancel = threading.Event()
    with _stdout_to_stderr() if jsonl else contextlib.nullcontext(sys.stdout) as stdout:
        writer = ProgressWriter(jsonl, stdout)
        ctx = None
        final: dict[str, Any]
        returned = False  # the job ended on its own on this rank (completed or agreed cancel)
        try:
            with _signals_cancel(cancel):
                from ..training.distributed import init_distributed
                from ..training.run import run_training

                _set_threads(args.threads)
                job = _job_from_args(args)
                ctx = init_distributed(args.device)
                final = (run or run_training)(job, writer, cancel, ctx)
                returned = True
        except KeyboardInterrupt:
            final = {"event": "end", "status": "cancelled", "reason": "stopped at once, without a checkpoint",
                     "out": args.out}
        except Exception as exc:  # anything at all: the supervisor must get a "failed" line
            reason = _failure_reason(exc)
            log.error("training failed: %s", reason, exc_info=log.isEnabledFor(logging.DEBUG)
                      or reason.startswith(type(exc).__name__))
            final = {"event": "end", "status": "failed", "reason": reason, "out": args.out}
        finally:
            if ctx is not None:
                ctx.close(synchronize=returned)
        if ctx is None or ctx.is_main:
            if jsonl:
                writer(final)
            else:
                _print_summary(final, stdout)
    return EXIT_FAILED if final["status"] == "failed" else EXIT_OK


def _print_summary(final: dict[str, Any], stdout) -> None:
    status, reason = final["status"], final.get("reason")
    if status == "failed":
        print(f"failed: {reason}", file=sys.stderr)
        return
    line = f"{status}: {reason}" if status != "completed" or reason not in ("completed", None) else "completed"
    if reason == "early_stop":
        line += f" at step {final.get('step')} (held-out loss stopped improving)"
    before, after = final.get("val_ppl_before"), final.get("val_ppl_after")
    if before is not None and after is not None:
        line += f"; validation perplexity {before:.2f} -> {after:.2f}"
    if final.get("restored_step") is not None:
        line += f" (the weights of step {final['restored_step']}, the best evaluation)"
    print(f"{line}; output in {final['out']}", file=stdout)


# ---------------------------------------------------------------------------- eval

def add_eval_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="held-out perplexity of a model on your data",
                              description="Perplexity on the validation split of PATH: the same documents "
                                          "`chatapp train` held out with the same --seed and --val-fraction "
                                          "(read from the adapter or trained model when not given), or on "
                                          "everything with --all.")
    p.add_argument("--model", default="default", help="'default', a .gguf file or a Hugging Face folder")
    p.add_argument("--adapter", default=None, metavar="DIR", help="a LoRA adapter folder to apply")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH")
    p.add_argument("--block-size", type=int, default=None, help="tokens per block (default: as trained, or 256)")
    p.add_argument("--val-fraction", type=float, default=None, help="default: as trained, or 0.1")
    p.add_argument("--seed", type=int, default=None, help="default: as trained, or 0")
    p.add_argument("--all", action="store_true", help="evaluate on all of the data, not the held-out part")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=cmd_eval)


def _training_notes(args: argparse.Namespace) -> dict[str, Any]:
    """How the adapter or model was trained (seed, val fraction, block size), if it says."""
    from pathlib import Path

    from ..training.run import TRAINING_NOTES
    from ..weights.peft_adapter import read_adapter_info

    if args.adapter:
        return read_adapter_info(args.adapter).metadata
    notes = Path(args.model).expanduser() / TRAINING_NOTES
    if notes.is_file():
        try:
            return json.loads(notes.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("%s is unreadable; using the default split", notes)
    return {}


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from ..engine.loader import load_model
    from ..training.dataset import DatasetError
    from ..training.documents import IngestError
    from ..training.prepare import count_targets, prepare_blocks, read_sources
    from ..training.trainer import evaluate

    _set_threads(args.threads)
    notes = _training_notes(args)
    seed = args.seed if args.seed is not None else int(notes.get("seed", 0))
    val_fraction = args.val_fraction if args.val_fraction is not None else float(notes.get("val_fraction", 0.1))
    try:
        sources = read_sources(args.data)
    except (IngestError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    loaded = load_model(args.model, device=args.device, adapter=args.adapter)
    block = args.block_size or int(notes.get("block_size", 0)) or min(256, loaded.config.max_seq_len)
    block = min(block, loaded.config.max_seq_len)
    try:
        data = prepare_blocks(sources, loaded.tokenizer, block, val_fraction, seed, use_all=args.all)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if data.val is None:
        print(f"error: no validation data: {len(sources.examples)} example(s) and --val-fraction {val_fraction} "
              f"hold none out; use --all or more documents", file=sys.stderr)
        return EXIT_FAILED
    with torch.no_grad():
        loss, ppl = evaluate(loaded.model, data.val, args.batch_size)
    result = {"model": str(args.model), "adapter": args.adapter, "split": "all" if args.all else "validation",
              "loss": loss, "ppl": ppl, "tokens": count_targets(data.val), "blocks": len(data.val),
              "examples": data.n_val, "total_examples": len(sources.examples), "block_size": block,
              "seed": seed, "val_fraction": val_fraction}
    if args.json:
        print(json.dumps(_json_safe(result)))
    else:
        what = "all the data" if args.all else (f"{data.n_val} of {len(sources.examples)} examples held out "
                                                  f"(seed {seed}, val fraction {val_fraction})")
        print(f"perplexity {ppl:.3f} (loss {loss:.4f}) over {result['tokens']} tokens in {len(data.val)} "
              f"blocks of {block}: {what}")
    return EXIT_OK


# ---------------------------------------------------------------------------- export

def add_export_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="merge a LoRA adapter into its model and write a Hugging Face folder",
                              description="Load MODEL, fold the LoRA adapter in (if given) and write a Hugging "
                                          "Face folder (config.json, model.safetensors, tokenizer files) that "
                                          "this app and transformers both open.")
    p.add_argument("--model", default="default", help="'default', a .gguf file or a Hugging Face folder")
    p.add_argument("--adapter", default=None, metavar="DIR", help="the LoRA adapter folder to merge")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from ..training.export import ExportError, merge_and_export

    try:
        folder = merge_and_export(args.model, args.adapter, args.out, dtype=getattr(torch, args.dtype))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"exported to {folder}")
    return EXIT_OK


def register(subparsers) -> None:
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    add_export_parser(subparsers)
