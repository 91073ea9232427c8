"""One decode step of the default model in each weights option, timed side by side, and profiled.

    nice -n 10 .venv/bin/python benchmarks/quant_step.py [--options float32 int8 int8-q8_0 int4] [--products eager compiled step]
                                                        [--steps 40] [--threads 1] [--profile] [--lora R]

options: int8 holds a scale per row and decodes in torch's int8 kernel (model/int8_rows.py);
"int8-q8_0" keeps Q8_0's form and its float32-arithmetic products (CHATAPP_INT8_PACK=0); int4 holds
torch's int4 kernel layout (model/int4_rows.py), "int4-q4_1" Q4_1's form (CHATAPP_INT4_PACK=0).
products: "eager" / "compiled" are the one-row compact products (quant_products.py) inside an eager
step; "step" is the whole decode step compiled as one graph (model/decode_step.py), float32 included;
"step-static" the same graph with the KV cache's length a constant (DecodeStep's
dynamic_context=False, a compile per context length, as before): a model of its own whose
forward_static is a copy of the method's code, so that dynamo keeps its graphs apart from "step"'s.

Every (option, products) model is loaded once, prefilled with the same 37 tokens, and then the
models take decode steps in turn (round robin), so a busy shared machine slows all of them
alike. Each step is timed in wall time and in this thread's CPU time (time.thread_time: time
the scheduler gave other processes is left out, so it is the steadier figure on a shared
machine). The table gives the median and minimum of each, and the weight bandwidth the step
reaches (weight bytes held / step time). --profile adds torch.profiler's top operators for
one decode step of each model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatapp.engine.loader import load_model  # noqa: E402
from chatapp.model import quant  # noqa: E402
from chatapp.model.decode_step import DecodeStep  # noqa: E402
from chatapp.model.lora import LORA_TARGETS, LoRAConfig, apply_lora, lora_state_dict  # noqa: E402
from chatapp.model.linear import configure_fast_paths  # noqa: E402

log = logging.getLogger("quant_step")
PROMPT = 37


def weights_of(option: str) -> str:
    return option.removesuffix("-q8_0").removesuffix("-q4_1")


def prepare(option: str, threads: int, lora: int = 0):
    os.environ["CHATAPP_DECODE_COMPILE"] = "0"  # the step is compiled below, on this cache
    # "int8-q8_0": int8 kept in Q8_0's form with its float32-arithmetic products (CHATAPP_INT8_PACK=0);
    # "int4-q4_1": int4 kept in Q4_1's form with its compiled products (CHATAPP_INT4_PACK=0)
    os.environ["CHATAPP_INT8_PACK"] = "0" if option.endswith("-q8_0") else "1"
    os.environ["CHATAPP_INT4_PACK"] = "0" if option.endswith("-q4_1") else "1"
    model = load_model("default", device="cpu", weights=weights_of(option), check_memory=False).model
    if lora:  # an adapter on every projection (the "all-linear" preset), B random: a real delta
        apply_lora(model, LoRAConfig(r=lora, alpha=2 * lora, target_modules=list(LORA_TARGETS)))
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in sorted(lora_state_dict(model).items()):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.01)
        model.eval()
    # the Engine's inference layout: one-row products split per thread, column-major float weights
    configure_fast_paths(model, decode_split=threads, onednn=True, column_major=True)
    model.setup_cache(1, 512)
    with torch.inference_mode():
        model(torch.arange(PROMPT)[None], torch.arange(PROMPT), last_only=True)
    return model


def compiled_step(model, dynamic_context: bool = True) -> DecodeStep:
    """The whole-step graph on the model's cache (prefilled again: the warm-up clears it)."""
    start = time.process_time()
    if not dynamic_context:  # dynamo keeps graphs per code object: a copy of the code keeps them apart
        method = type(model).forward_static
        copy = types.FunctionType(method.__code__.replace(), method.__globals__, method.__name__,
                                  method.__defaults__, method.__closure__)
        model.forward_static = types.MethodType(copy, model)
    decode = DecodeStep(model, "compiled", dynamic_context=dynamic_context)
    decode.warm_up()
    with torch.inference_mode():
        model(torch.arange(PROMPT)[None], torch.arange(PROMPT), last_only=True)
    log.info("decode step compiled in %.1f s of CPU (this process)", time.process_time() - start)
    return decode


def step(model, pos: int, products: str, decode=None) -> tuple[float, float]:
    quant.set_products("compiled" if products.startswith("step") else products)
    with torch.inference_mode():  # tensors made inside, as the engine's: dynamo guards on it
        token, input_pos = torch.tensor([[pos % 1000 + 5]]), torch.tensor([pos])
        wall, cpu = time.perf_counter(), time.thread_time()
        if decode is not None:
            decode(token, input_pos, pos)
        else:
            model(token, input_pos)
        return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--options", nargs="+", default=["float32", "int8", "int8-q8_0", "int4"])
    ap.add_argument("--products", nargs="+", default=["eager", "compiled", "step"],
                    choices=["eager", "compiled", "step", "step-static"])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--lora", type=int, default=0, metavar="R",
                    help="every model wears a LoRA adapter of rank R on all seven projections")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    runs, steps = {}, {}
    for option in args.options:
        model = prepare(option, args.threads, args.lora)
        for products in args.products:
            if option == "float32" and products == "compiled":
                continue  # no compact products
            if products == "step-static":  # a model of its own (its caches unmarked, its own graphs)
                runs[(option, products)] = static = prepare(option, args.threads, args.lora)
                steps[(option, products)] = compiled_step(static, dynamic_context=False)
                continue
            runs[(option, products)] = model
            if products == "step":
                steps[(option, products)] = compiled_step(model)
    for key, model in runs.items():  # warm up (and compile) before any timing
        start = time.perf_counter()
        for i in range(3):
            step(model, PROMPT + i, key[1], steps.get(key))
        log.info("%s %s: first steps %.1f s (compiling, when compiled)", *key, time.perf_counter() - start)
    times = {key: [] for key in runs}
    for i in range(args.steps):
        for key, model in runs.items():
            times[key].append(step(model, PROMPT + 3 + i, key[1], steps.get(key)))
    print("| weights | products | step ms wall, median (min) | step ms CPU, median (min) | weight MB | GB/s (CPU median) |")
    print("|---|---|---|---|---|---|")
    for (option, products), model in runs.items():
        wall = [t[0] * 1e3 for t in times[(option, products)]]
        cpu = [t[1] * 1e3 for t in times[(option, products)]]
        nbytes = quant.tensor_bytes(model)
        row = {"weights": option, "products": products, "wall_ms_median": round(statistics.median(wall), 2),
               "wall_ms_min": round(min(wall), 2), "cpu_ms_median": round(statistics.median(cpu), 2),
               "cpu_ms_min": round(min(cpu), 2), "weight_bytes": nbytes,
               "GBps_cpu_median": round(nbytes / statistics.median(cpu) / 1e6, 2)}
        log.info(json.dumps(row))
        print(f"| {option} | {products} | {row['wall_ms_median']} ({row['wall_ms_min']}) | {row['cpu_ms_median']} "
              f"({row['cpu_ms_min']}) | {nbytes / 1e6:.0f} | {row['GBps_cpu_median']} |")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for (option, products), model in runs.items():
            for i in range(3):  # the profiler's own warm-up
                step(model, PROMPT + 3 + args.steps + i, products, steps.get((option, products)))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step(model, PROMPT + 6 + args.steps, products, steps.get((option, products)))
            print(f"\n### one decode step: {option}, {products} products\n")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return 0


if __name__ == "__main__":
    sys.exit(main())
