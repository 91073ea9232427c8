"""Fine-tune the default model on documents it has never seen: held-out perplexity before and after.

    .venv/bin/python benchmarks/finetune_demo.py [--steps 150] [--eval-every 25] [--out DIR] [--json]
        [-- extra chatapp train options]

The documents (benchmarks/demo_docs/, eleven Markdown files, ~16 KB) describe the Lantern Guild
of Vessaro, an invented society of night ferrymen written for this demo, so the base model
cannot know them. The script does what a user does, through the command line:

1. `chatapp train --method lora --progress jsonl` on the folder, with the command's LoRA
   defaults (r=8, alpha=16, dropout 0.05, q_proj and v_proj, lr 2e-4, cosine schedule), block
   128, batch 4; two of the eleven documents are held out (--val-fraction 0.2) and their
   perplexity is measured before training, every --eval-every steps and at the end. Its JSON
   lines are read as they come and summarised;
2. `chatapp generate --chat`, greedy, with and without `--adapter OUT`, on one question whose
   answer is in the training documents; both replies are printed.

The default 150 steps take about 3 minutes on a quiet 2-core CPU (~1.2 s a step). The corpus is
small (26 training blocks of 128 tokens), so stronger settings overfit: with
`-- --lr 5e-4 --lora-rank 16 --lora-alpha 32 --lora-targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj`
held-out perplexity is lowest after ~20 steps and then climbs far above where it started,
while the training loss keeps falling (the adapter then recites the documents). Options after
`--` go to `chatapp train` unchanged.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = HERE / "demo_docs"
QUESTION = "In the Lantern Guild of Vessaro, what colour is the flame of a guild lantern, and which oil does it burn?"


def chatapp_command() -> list[str]:
    """The `chatapp` console script beside this interpreter (a virtualenv's), else `python -m chatapp`."""
    script = Path(sys.executable).parent / "chatapp"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "chatapp"]


def train(args: argparse.Namespace, out: Path, extra: list[str]) -> tuple[list[dict[str, Any]], float, str]:
    """Run `chatapp train`, echoing progress; (events, wall seconds, stderr tail)."""
    command = chatapp_command() + [
        "train", "--model", "default", "--data", str(args.data), "--out", str(out), "--method", "lora",
        "--max-steps", str(args.steps), "--block-size", str(args.block_size), "--batch-size", str(args.batch_size),
        "--eval-every", str(args.eval_every), "--val-fraction", str(args.val_fraction), "--threads",
        str(args.threads), "--progress", "jsonl", *extra]
    say(args, "$ " + " ".join(command))
    events: list[dict[str, Any]] = []
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT) as proc:
            for line in proc.stdout:
                if not line.strip():
                    continue
                event = json.loads(line)
                event["t"] = time.perf_counter() - start
                events.append(event)
                show(args, event)
        err.seek(0)
        stderr = err.read()[-3000:]
    return events, time.perf_counter() - start, stderr


def show(args: argparse.Namespace, event: dict[str, Any]) -> None:
    kind, t = event.get("event"), event["t"]
    if kind == "dataset":
        say(args, f"[{t:5.0f} s] data: {event['train_examples']} documents for training ({event['train_tokens']} "
                  f"tokens, {event['train_blocks']} blocks), {event['val_examples']} held out "
                  f"({event['val_tokens']} tokens)")
    elif kind == "eval":
        say(args, f"[{t:5.0f} s] step {event['step']:4d}: held-out perplexity {event['val_ppl']:.2f}")
    elif kind == "step" and (event["step"] % 10 == 0 or event["step"] == 1):
        say(args, f"[{t:5.0f} s] step {event['step']:4d}/{event['total_steps']}: loss {event['loss']:.3f}, "
                  f"{event['tokens_per_s']:.0f} tokens/s")
    elif kind == "end":
        say(args, f"[{t:5.0f} s] end: {event['status']} ({event.get('reason')})")


def say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def generate(prompt: str, adapter: Path | None, args: argparse.Namespace) -> tuple[str, float]:
    command = chatapp_command() + ["generate", "--model", "default", "--chat", "--prompt", prompt,
                                   "--temperature", "0", "--max-new-tokens", str(args.max_new_tokens),
                                   "--threads", str(args.threads), "--json"]
    if adapter is not None:
        command += ["--adapter", str(adapter)]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        return f"(chatapp generate failed: {run.stderr.strip()[-500:]})", elapsed
    return json.loads(run.stdout)["text"].strip(), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="options after -- go to `chatapp train` unchanged")
    parser.add_argument("--data", type=Path, default=DOCS)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="adapter folder (default: a new temporary one)")
    parser.add_argument("--prompt", default=QUESTION, help="the question asked with and without the adapter")
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="print one JSON summary (progress goes to stderr)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="lantern-guild-")) / "adapter"

    events, wall, stderr = train(args, out, extra)
    end = events[-1] if events and events[-1].get("event") == "end" else {}
    if end.get("status") != "completed":
        say(args, f"training did not complete: {end.get('reason')}\n{stderr}")
        return 1
    steps = [e for e in events if e.get("event") == "step"]
    evals = [e for e in events if e.get("event") == "eval"]
    dataset = next((e for e in events if e.get("event") == "dataset"), {})
    first_step_t = steps[0]["t"] - args.batch_size * args.block_size / steps[0]["tokens_per_s"] if steps else 0.0
    base_reply, base_s = generate(args.prompt, None, args)
    tuned_reply, tuned_s = generate(args.prompt, out, args)

    result = {
        "documents": str(args.data), "train_documents": dataset.get("train_examples"),
        "held_out_documents": dataset.get("val_examples"), "train_tokens": dataset.get("train_tokens"),
        "held_out_tokens": dataset.get("val_tokens"),
        "steps": end.get("step"), "block_size": args.block_size, "batch_size": args.batch_size,
        "train_options": extra,
        "val_ppl_before": end.get("val_ppl_before"), "val_ppl_after": end.get("val_ppl_after"),
        "val_ppl_curve": [(e["step"], e["val_ppl"]) for e in evals],
        "loss_first": steps[0]["loss"] if steps else None, "loss_last": steps[-1]["loss"] if steps else None,
        "tokens_per_s_median": statistics.median(e["tokens_per_s"] for e in steps) if steps else None,
        "train_wall_s": wall, "training_loop_s": (steps[-1]["t"] - first_step_t) if steps else None,
        "startup_s": first_step_t,
        "prompt": args.prompt, "reply_base": base_reply, "reply_adapter": tuned_reply,
        "generate_s": {"base": base_s, "adapter": tuned_s}, "adapter": str(out),
    }
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print()
    print(f"documents: {result['train_documents']} for training ({result['train_tokens']} tokens), "
          f"{result['held_out_documents']} held out ({result['held_out_tokens']} tokens)")
    print(f"held-out perplexity: {result['val_ppl_before']:.2f} before -> {result['val_ppl_after']:.2f} after "
          f"{result['steps']} steps (" + ", ".join(f"{s}: {p:.2f}" for s, p in result["val_ppl_curve"]) + ")")
    print(f"training loss {result['loss_first']:.3f} (step 1) -> {result['loss_last']:.3f} (step {result['steps']}); "
          f"{result['tokens_per_s_median']:.0f} tokens/s (median step)")
    print(f"time: `chatapp train` {wall:.0f} s wall ({first_step_t:.0f} s before the first step, training loop with "
          f"evaluations {result['training_loop_s']:.0f} s); generate {base_s:.0f} s + {tuned_s:.0f} s")
    print(f"\nQ: {args.prompt}")
    print(f"base model:       {base_reply}")
    print(f"with the adapter: {tuned_reply}")
    print(f"\nadapter: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
