"""Weights options side by side, in one run: speed (`chatapp bench`, one process per option),
memory, and quality against float32, beside transformers float32 and llama.cpp.

    nice -n 10 .venv/bin/python benchmarks/quantized.py [--threads 1] [--new-tokens 64] [--options float32 int8 int4]

Speed: decode and prefill tok/s after a 37-token prompt (the issue's setting), the weight
bytes held and the bandwidth decode reaches (bytes held x tokens/s), peak resident memory.
Quality: perplexity on a fixed text (the first demo document) and greedy agreement with
float32 (tokens equal before the first difference, over a fixed set of prompts).
llama.cpp: only through llama-cpp-python in a separate virtual environment
(benchmarks/.llama-venv); the column says "absent" when there is none: it is never built here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatapp.engine.loader import load_model, resolve_model  # noqa: E402
from chatapp.engine.quality import agreement, greedy_ids, text_perplexity  # noqa: E402

log = logging.getLogger("quantized")
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Water boils at", "The three primary colours are",
           "Once upon a time", "import numpy as np\n"]
LLAMA_VENV = ROOT / "benchmarks" / ".llama-venv"


def bench(option: str, args) -> dict:
    cmd = [sys.executable, "-m", "chatapp", "bench", "--model", args.model, "--weights", option, "--device", "cpu",
           "--threads", str(args.threads), "--prompt-tokens", "37", "--new-tokens", str(args.new_tokens),
           "--runs", str(args.runs), "--json"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def quality(option: str, reference: dict, args) -> dict:
    loaded = load_model(args.model, device="cpu", weights=option, check_memory=False)
    text = sorted((ROOT / "benchmarks" / "demo_docs").glob("*"))[0].read_text(encoding="utf-8")
    ppl = text_perplexity(loaded.model, loaded.tokenizer, text, max_tokens=256)
    continuations = [greedy_ids(loaded.model, loaded.tokenizer, p, args.greedy_tokens) for p in PROMPTS]
    result = {"perplexity": round(ppl, 3), "continuations": continuations}
    if reference:
        agree = [agreement(c, r) for c, r in zip(continuations, reference["continuations"])]
        result["greedy_agreement"] = f"{sum(agree)}/{args.greedy_tokens * len(PROMPTS)}"
    return result


def transformers_speed(args) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generation import reference_speed  # transformers float32, same prompt length

    return reference_speed(resolve_model(args.model), 37, args.new_tokens, args.runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--greedy-tokens", type=int, default=16)
    ap.add_argument("--options", nargs="+", default=["float32", "int8", "int4"])
    ap.add_argument("--no-transformers", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    rows, reference = {}, {}
    for option in args.options:
        speed = bench(option, args)
        q = quality(option, reference, args)
        if option == "float32":
            reference = q
        rows[option] = {**speed, **{k: v for k, v in q.items() if k != "continuations"}}
        log.info("%s: %s", option, json.dumps(rows[option]))
    if not args.no_transformers:
        rows["transformers float32"] = transformers_speed(args)
        log.info("transformers: %s", rows["transformers float32"])
    rows["llama.cpp"] = ("absent: no benchmarks/.llama-venv with llama-cpp-python (building it compiles "
                         "C++ for 10-20 minutes; not done here)") if not LLAMA_VENV.exists() else "not wired yet"
    print(json.dumps(rows, indent=1))
    base = rows.get("float32", {}).get("decode_tok_s")
    print("| weights | decode tok/s | vs float32 | prefill tok/s | weight MB | decode GB/s | peak MiB | ppl | greedy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for option in args.options:
        r = rows[option]
        print(f"| {option} | {r['decode_tok_s']:.1f} | {r['decode_tok_s'] / base if base else 0:.2f} | "
              f"{r['prefill_tok_s']:.0f} | {r['weight_bytes'] / 1e6:.0f} | {r['decode_weight_GBps']} | "
              f"{r['peak_rss_bytes'] / 1024**2:.0f} | {r['perplexity']} | {r.get('greedy_agreement', '-')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
