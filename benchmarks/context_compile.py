"""What a new context length costs the compiled decode step: loads of the default model at two
context lengths, in one process and then in a new one, with the step's caches dynamic (today) or
static (the graph per context length of before), each variant on its own fresh inductor cache.

    nice -n 15 .venv/bin/python benchmarks/context_compile.py [--weights float32] [--contexts 512 2048]
                                                            [--variants dynamic static] [--threads 1]

For each variant: a process loads at the first context (the cold compile: empty disk cache),
then at the second (the user changing the context: same process), decoding 32 tokens after
each load; then a new process loads at the second context (inductor's disk cache warm, as a
restart of the app). Each load reports its wall and CPU seconds, the seconds spent compiling
the step (DecodeStep.warm_up), dynamo's graph count after it and after the decode (a decode
that compiles shows there), and the decode speed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(args) -> int:
    import torch
    import torch._dynamo

    sys.path.insert(0, str(ROOT))
    from chatapp.engine import loader
    from chatapp.engine.generate import Engine
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.model import decode_step

    torch.set_num_threads(args.threads)
    if args.variant == "static":  # the caches' length a constant of the graph, as before
        loader.DecodeStep = functools.partial(decode_step.DecodeStep, dynamic_context=False)
    warm = {}
    original = decode_step.DecodeStep.warm_up

    def timed_warm_up(self):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return original(self)
        finally:
            warm["s"], warm["cpu_s"] = time.perf_counter() - start, time.process_time() - cpu

    decode_step.DecodeStep.warm_up = timed_warm_up
    models = []  # kept, as a process that loads a second model holds the first until it is dropped
    for context in args.contexts:
        warm.clear()
        start, cpu = time.perf_counter(), time.process_time()
        loaded = loader.load_model("default", device="cpu", weights=args.weights, context_len=context,
                                   check_memory=False)
        load_s, load_cpu = time.perf_counter() - start, time.process_time() - cpu
        graphs_loaded = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        engine = Engine(loaded.model, loaded.tokenizer, context_len=context)
        ids = loaded.tokenizer.encode("The capital of France is")
        list(engine.generate_ids(ids, SamplingSettings(temperature=0.0, max_new_tokens=8)))  # first steps
        list(engine.generate_ids(ids, SamplingSettings(temperature=0.0, max_new_tokens=32)))
        stats = engine.reply.stats.to_dict()
        print(json.dumps({"variant": args.variant, "context": context, "load_s": round(load_s, 1),
                          "load_cpu_s": round(load_cpu, 1), "compile_s": round(warm.get("s", 0.0), 1),
                          "compile_cpu_s": round(warm.get("cpu_s", 0.0), 1), "graphs_after_load": graphs_loaded,
                          "graphs_after_decode": torch._dynamo.utils.counters["stats"]["unique_graphs"],
                          "compiled": loaded.model.decode_step.compiled,
                          "decode_tok_s": stats.get("decode_tok_s")}), flush=True)
        models.append(loaded)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="float32")
    ap.add_argument("--contexts", nargs="+", type=int, default=[512, 2048], help="the first and the second")
    ap.add_argument("--variants", nargs="+", default=["dynamic", "static"], choices=["dynamic", "static"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="dynamic", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    rows = []
    for variant in args.variants:
        with tempfile.TemporaryDirectory(prefix=f"inductor-{variant}-") as cache:
            env = dict(os.environ, CHATAPP_DECODE_COMPILE="1", TORCHINDUCTOR_CACHE_DIR=cache)
            for process, contexts in (("first", args.contexts[:2]), ("new", args.contexts[1:2])):
                cmd = [sys.executable, __file__, "--child", "--variant", variant, "--weights", args.weights,
                       "--threads", str(args.threads), "--contexts", *map(str, contexts)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                for line in out.splitlines():
                    row = dict(json.loads(line), process=process)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(f"\nweights {args.weights}, {args.threads} thread(s); load average {open('/proc/loadavg').read().split()[:3]}\n")
    print("| step | process | context | load s (CPU s) | step compile s (CPU s) | graphs after load / decode | decode tok/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['process']} | {r['context']} | {r['load_s']} ({r['load_cpu_s']}) | "
              f"{r['compile_s']} ({r['compile_cpu_s']}) | {r['graphs_after_load']} / {r['graphs_after_decode']} | "
              f"{r['decode_tok_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
