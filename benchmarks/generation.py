"""Decode and prefill speed: ours against transformers on the same model, in the same run.

    .venv/bin/python benchmarks/generation.py [--model default] [--threads 2] [--prompt-tokens 500]

Both run the default GGUF dequantized to float32 on the CPU with the same thread count,
greedy, with a KV cache (transformers: `generate`). Prints tokens/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatapp.commands.generate import bench_engine  # noqa: E402
from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.loader import resolve_model  # noqa: E402


def reference_speed(path: Path, prompt_tokens: int, new_tokens: int, runs: int) -> dict:
    """transformers' prefill (one forward over the prompt) and decode (generate) tokens/s."""
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    load_s = time.perf_counter() - start
    model.eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    vocab = model.config.vocab_size
    prefill, decode = [], []
    with torch.inference_mode():
        for run in range(runs + 1):
            g = torch.Generator().manual_seed(run)
            prompt = torch.randint(0, vocab, (1, prompt_tokens), generator=g)
            t0 = time.perf_counter()
            model(prompt, use_cache=True, logits_to_keep=1)
            t_prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            t_total = time.perf_counter() - t0
            if run:
                prefill.append(prompt_tokens / t_prefill)
                # generate = one prefill + (new_tokens - 1) decode steps
                decode.append((new_tokens - 1) / max(t_total - t_prefill, 1e-9))
    return {"prefill_tok_s": statistics.median(prefill), "decode_tok_s": statistics.median(decode),
            "load_s": load_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backend = ChatBackend()
    start = time.perf_counter()
    info = backend.load(args.model, LoadOptions(device="cpu", context_len=args.prompt_tokens + args.new_tokens + 8,
                                                threads=args.threads))
    ours_load = time.perf_counter() - start
    ours = bench_engine(backend.engine, args.prompt_tokens, args.new_tokens, args.runs)
    del backend
    ref = reference_speed(resolve_model(args.model), args.prompt_tokens, args.new_tokens, args.runs)
    result = {
        "model": info.name, "threads": args.threads, "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "ours": {"prefill_tok_s": ours["prefill_tok_s"], "decode_tok_s": ours["decode_tok_s"], "load_s": ours_load},
        "transformers": ref,
        "decode_ratio": ours["decode_tok_s"] / ref["decode_tok_s"],
        "prefill_ratio": ours["prefill_tok_s"] / ref["prefill_tok_s"],
        "load_ratio": ref["load_s"] / ours_load,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{info.name}, float32, {args.threads} threads, prompt {args.prompt_tokens}, new {args.new_tokens}")
        print(f"{'':14}{'ours':>10}{'transformers':>14}{'ratio':>8}")
        print(f"{'decode tok/s':14}{ours['decode_tok_s']:10.1f}{ref['decode_tok_s']:14.1f}{result['decode_ratio']:8.2f}")
        print(f"{'prefill tok/s':14}{ours['prefill_tok_s']:10.0f}{ref['prefill_tok_s']:14.0f}{result['prefill_ratio']:8.2f}")
        print(f"{'load s':14}{ours_load:10.1f}{ref['load_s']:14.1f}{result['load_ratio']:8.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
