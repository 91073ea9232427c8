"""Fine-tune the default model on documents it has never seen; held-out perplexity before and after.

    .venv/bin/python benchmarks/finetune_demo.py [--steps 40] [--out /tmp/lantern-guild]

The documents (benchmarks/demo_docs/) describe an invented society, the Lantern Guild of
Vessaro, written for this demo, so the base model cannot know them. The script runs
`chatapp train` (LoRA) as a user would, reads its JSON-lines progress, then asks the same
question with and without the adapter.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHATAPP = [sys.executable, "-m", "chatapp"]
QUESTION = "In the Lantern Guild of Vessaro, what colour is the flame of a guild lantern?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="lantern-guild-")) / "adapter"
    command = CHATAPP + ["train", "--model", "default", "--data", str(HERE / "demo_docs"), "--out", str(out),
                         "--method", "lora", "--max-steps", str(args.steps), "--block-size", "128",
                         "--batch-size", "4", "--lr", "3e-4", "--lora-rank", "16", "--lora-alpha", "32",
                         "--lora-targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                         "--eval-every", "5", "--val-fraction", "0.2", "--progress", "jsonl"]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    wall = time.perf_counter() - start
    events = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    end = events[-1] if events else {}
    steps = [e for e in events if e.get("event") == "step"]
    evals = [e for e in events if e.get("event") == "eval"]
    print(f"train: status {end.get('status')} ({end.get('reason')}), {len(steps)} steps, {wall:.0f} s wall")
    if end.get("status") != "completed":
        print(run.stderr[-2000:])
        return 1
    print(f"held-out perplexity: {end['val_ppl_before']:.2f} before -> {end['val_ppl_after']:.2f} after")
    print("evaluations: " + ", ".join(f"step {e.get('step')}: {e.get('val_ppl'):.2f}" for e in evals))
    if steps:
        print(f"training loss: {steps[0]['loss']:.3f} (step 1) -> {steps[-1]['loss']:.3f} (step {steps[-1]['step']}),"
              f" {steps[-1].get('tokens_per_s', 0):.0f} tokens/s")
    for label, extra in (("base model", []), ("with the adapter", ["--adapter", str(out)])):
        reply = subprocess.run(CHATAPP + ["generate", "--model", "default", "--chat", "--prompt", QUESTION,
                                          "--temperature", "0", "--max-new-tokens", "60", "--json", *extra],
                               capture_output=True, text=True, cwd=HERE.parent)
        text = json.loads(reply.stdout)["text"] if reply.returncode == 0 else f"error: {reply.stderr[-500:]}"
        print(f"{label}: {text!r}")
    print(f"adapter: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
