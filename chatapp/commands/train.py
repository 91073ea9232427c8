"""`chatapp train`, `chatapp eval` and `chatapp export`.

`chatapp train --progress jsonl` is what the window runs as a child process (and what a cluster
runs under torchrun): stdout then carries only JSON objects, one per line (the typed events of
training/protocol.py, where the options table behind this command's arguments also lives),
ending with

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
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Optional

from ..arg_types import non_negative_int
from ..training.protocol import (CANCELLED, FAILED, TRAINING_NOTES, EndEvent, Event, TrainJob, add_arguments,
                                 encode, json_safe)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1
SECOND_SIGNAL_GRACE_S = 1.0


# ---------------------------------------------------------------------------- progress

class ProgressWriter:
    """Typed events -> JSON lines on `stream`, or readable lines on stderr."""

    def __init__(self, jsonl: bool, stream) -> None:
        self.jsonl = jsonl
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            if self.jsonl:
                self.stream.write(encode(event))
                self.stream.flush()
            else:
                line = event.describe()
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

def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a model on documents or conversations (or train one from scratch)",
        description="Fine-tune MODEL on a folder or files of documents, or on a .jsonl file of conversations "
                    "({\"messages\": [...]} per line: only the assistant's turns are learned). LoRA writes a "
                    "PEFT adapter to --out; full and scratch write a Hugging Face model folder. Runs the same "
                    "under `torchrun --nproc_per_node N -m chatapp train ...` (data parallel; --batch-size is "
                    "the global batch).")
    add_arguments(p)  # the options table: chatapp/training/protocol.py
    p.add_argument("--progress", choices=("jsonl",), default=None,
                   help="jsonl: stdout carries only JSON progress events, one per line")
    p.set_defaults(func=cmd_train)


def _set_threads(threads: int) -> None:
    import torch

    from ..engine.device import default_threads

    if threads:
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, default_threads() // local))


def _failure_reason(exc: BaseException) -> str:
    import torch

    from ..engine.device import DeviceError
    from ..errors import ModelLoadError
    from ..training.dataset import DatasetError
    from ..documents.reading import IngestError
    from ..training.run import TrainJobError

    if isinstance(exc, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return ("out of memory during training; try a smaller --batch-size (with --grad-accum to keep the "
                "effective batch), a smaller --block-size, or --gradient-checkpointing")
    if isinstance(exc, (ModelLoadError, DatasetError, IngestError, TrainJobError, DeviceError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def cmd_train(args: argparse.Namespace, run: Optional[Callable[..., EndEvent]] = None) -> int:
    jsonl = args.progress == "jsonl"
    cancel = threading.Event()
    with _stdout_to_stderr() if jsonl else contextlib.nullcontext(sys.stdout) as stdout:
        writer = ProgressWriter(jsonl, stdout)
        ctx = None
        final: EndEvent
        returned = False  # the job ended on its own on this rank (completed or agreed cancel)
        try:
            with _signals_cancel(cancel):
                from ..training.distributed import init_distributed
                from ..training.run import run_training

                _set_threads(args.threads)
                job = TrainJob.from_args(args)
                ctx = init_distributed(args.device)
                final = (run or run_training)(job, writer, cancel, ctx)
                returned = True
        except KeyboardInterrupt:
            final = EndEvent(status=CANCELLED, reason="stopped at once, without a checkpoint", out=str(args.out))
        except Exception as exc:  # anything at all: the supervisor must get a "failed" line
            reason = _failure_reason(exc)
            log.error("training failed: %s", reason, exc_info=log.isEnabledFor(logging.DEBUG)
                      or reason.startswith(type(exc).__name__))
            final = EndEvent(status=FAILED, reason=reason, out=str(args.out))
        finally:
            if ctx is not None:
                ctx.close(synchronize=returned)
        if ctx is None or ctx.is_main:
            if jsonl:
                writer(final)
            else:
                print(final.describe(), file=sys.stderr if final.status == FAILED else stdout)
    return EXIT_FAILED if final.status == FAILED else EXIT_OK


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
    p.add_argument("--threads", type=non_negative_int, default=0)
    p.add_argument("--per-token", default=None, metavar="FILE",
                   help="also write each evaluated token as a JSON line {index, id, token, logprob_base, "
                        "logprob_adapter} (logprob_adapter with --adapter: the adapter on versus off over "
                        "the same tokens)")
    p.add_argument("--questions", default=None, metavar="FILE|auto|none",
                   help="also ask the quiz (chatapp quiz) and report its score: a JSONL question file, 'auto' "
                        "(questions made from --data), or 'none'; default: 'auto' for an adapter or model "
                        "trained with the knowledge recipe, else 'none'")
    p.set_defaults(func=cmd_eval)


def _training_notes(args: argparse.Namespace) -> dict[str, Any]:
    """How the adapter or model was trained (seed, val fraction, block size), if it says."""
    from pathlib import Path

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
    from ..documents.reading import IngestError
    from ..training.prepare import count_targets, prepare_blocks, read_sources
    from ..training.trainer import evaluate

    _set_threads(args.threads)
    notes = _training_notes(args)
    seed = args.seed if args.seed is not None else int(notes.get("seed", 0))
    val_fraction = args.val_fraction if args.val_fraction is not None else float(notes.get("val_fraction", 0.1))
    from ..training.quiz import QuizError

    try:
        sources = read_sources(args.data)
        questions = eval_questions(args.questions, notes, sources)
    except (IngestError, DatasetError, QuizError) as exc:
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
    per_token = _write_per_token(args.per_token, loaded, data.val) if args.per_token else None
    quiz = None
    if questions:
        from ..engine.generate import Engine
        from ..training.quiz import run_quiz

        loaded.model.eval()
        engine = Engine(loaded.model, loaded.tokenizer, context_len=min(2048, loaded.config.max_seq_len))
        quiz = run_quiz(engine, questions).to_dict()
    result = {"model": str(args.model), "adapter": args.adapter, "split": "all" if args.all else "validation",
              "loss": loss, "ppl": ppl, "tokens": count_targets(data.val), "blocks": len(data.val),
              "examples": data.n_val, "total_examples": len(sources.examples), "block_size": block,
              "seed": seed, "val_fraction": val_fraction, "quiz": quiz}
    if per_token is not None:
        result["per_token"] = per_token
    if args.json:
        print(json.dumps(json_safe(result)))
    else:
        what = "all the data" if args.all else (f"{data.n_val} of {len(sources.examples)} examples held out "
                                                  f"(seed {seed}, val fraction {val_fraction})")
        print(f"perplexity {ppl:.3f} (loss {loss:.4f}) over {result['tokens']} tokens in {len(data.val)} "
              f"blocks of {block}: {what}")
        if quiz is not None:
            print(f"quiz: {quiz['score']} of {quiz['total']} questions right, closed-book ({quiz['seconds']:.1f} s)")
    return EXIT_OK


def _write_per_token(path: str, loaded: Any, blocks: Any) -> dict[str, Any]:
    """Score every target token of `blocks` (adapter off, and on when loaded) and write the JSON
    lines to `path` atomically; returns the file, its line count and the perplexities."""
    from ..engine.token_scores import perplexity, score_text_ids
    from ..paths import atomic_write_text

    lines, base, tuned = [], [], []
    for row in range(len(blocks)):
        ids = blocks.tokens[row].tolist()
        mask = blocks.loss_mask[row, 1:].tolist() if blocks.loss_mask is not None else [True] * (len(ids) - 1)
        for score, counted in zip(score_text_ids(loaded.model, ids, loaded.tokenizer, window=len(ids)), mask):
            if counted:
                line = dict(score.to_json(), index=len(lines))
                lines.append(json.dumps(line, ensure_ascii=False))
                base.append(score.logprob_base)
                if score.logprob_adapter is not None:
                    tuned.append(score.logprob_adapter)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    summary = {"file": str(path), "tokens": len(lines), "ppl_base": perplexity(base)}
    if tuned:
        summary["ppl_adapter"] = perplexity(tuned)
    return summary


def eval_questions(spec, notes: dict[str, Any], sources) -> list:
    """The quiz `chatapp eval` asks: none, a question file, or questions made from the documents
    ('auto'; the default when the notes say the knowledge recipe trained it: its raw-text
    perplexity alone hides whether the facts can be recalled by question)."""
    from ..training.knowledge import quiz_questions
    from ..training.quiz import read_questions

    if spec is None:
        spec = "auto" if notes.get("recipe") == "knowledge" else "none"
    if spec == "none":
        return []
    if spec != "auto":
        return read_questions(spec)
    if sources.kind != "documents":
        return []
    return quiz_questions([(e.source, e.text or "") for e in sources.examples])


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
