"""The memory estimate of each weights option against the peak a real load and reply reach.

    .venv/bin/python benchmarks/memory_fit.py                       # the bundled model, float32 int8 int4
    .venv/bin/python benchmarks/memory_fit.py --model M.gguf --weights int8 --context 512 --json
    .venv/bin/python benchmarks/memory_fit.py --model FOLDER    # a safetensors folder (README's rows:
                                                                # the bundled model via merge_and_export)

Each option runs in a fresh child process (one torch thread): after the imports the process's
peak resident memory is reset (Linux: `5` written to /proc/self/clear_refs resets VmHWM), then
the model is loaded with `load_model(weights=...)`, the engine built (its KV cache allocated
for the whole context) and a prompt filling most of the context prefilled and a few tokens
decoded; the peak (VmHWM) minus the resident memory before the load is what the option cost.
The estimate (`engine.weights_option.estimate_for_option`, what the picker and
`chatapp models --json` show) is printed beside it, with the bytes the model's tensors hold
(`model.quant.tensor_bytes`) and the KV cache's. Resident memory counts the model file's pages
the load touched (memory-mapped, reclaimable by the system, but resident at the peak).

This complements benchmarks/quantized.py's peak column (whole `chatapp bench` runs): here the
estimate and the peak come from the same child, the rest of the process left out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OPTIONS = ("float32", "int8", "int4")


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM, RssAnon, RssFile)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def measure(model: str, option: str, context: int, new_tokens: int) -> dict:
    """In this process: load `model` in `option`, fill the context, decode; bytes measured."""
    import torch

    from chatapp.engine.generate import Engine
    from chatapp.engine.loader import load_model
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.engine.weights_option import estimate_for_option
    from chatapp.model.quant import tensor_bytes

    torch.set_num_threads(1)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS now
    before = _status("VmRSS")
    loaded = load_model(model, device="cpu", context_len=context, weights=option, check_memory=False)
    load_peak, after_load = _status("VmHWM") - before, _status("VmRSS") - before
    context = min(context, loaded.config.max_seq_len)
    engine = Engine(loaded.model, loaded.tokenizer, context_len=context)
    prompt = [int(i) for i in torch.randint(0, loaded.config.vocab_size, (context - new_tokens - 1,),
                                            generator=torch.Generator().manual_seed(0))]
    engine.generate(prompt, SamplingSettings(temperature=0.0, max_new_tokens=new_tokens))
    peak = _status("VmHWM") - before
    estimate = estimate_for_option(loaded.config, context, option, source=loaded.kind)
    kv = sum(b.numel() * b.element_size() for name, b in loaded.model.named_buffers() if "kv_cache." in name)
    return {"model": loaded.name, "weights": option, "context": context, "prompt_tokens": len(prompt),
            "estimate_bytes": estimate.total_bytes, "estimate_weights_bytes": estimate.weights_bytes,
            "estimate_kv_bytes": estimate.kv_cache_bytes, "estimate_working_bytes": estimate.overhead_bytes,
            "peak_bytes": peak, "load_peak_bytes": load_peak, "after_load_bytes": after_load,
            "anon_after_bytes": _status("RssAnon"), "tensor_bytes": tensor_bytes(loaded.model), "kv_bytes": kv,
            "file_bytes_resident_after": _status("RssFile"), "ratio": estimate.total_bytes / peak}


def run_child(model: str, option: str, context: int, new_tokens: int, timeout: float = 900) -> dict:
    """`measure` in a fresh process (so one option's memory never counts in another's)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--model", model,
                          "--weights", option, "--context", str(context), "--new-tokens", str(new_tokens)],
                         capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"memory_fit child for {option} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--weights", nargs="+", default=list(OPTIONS))
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="one JSON object per option")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.model, args.weights[0], args.context, args.new_tokens)))
        return 0
    mib = 1024**2
    if not args.json:
        print(f"{'weights':8} {'estimate MiB':>12} {'peak MiB':>9} {'est/peak':>8} {'tensors MiB':>11} "
              f"{'KV MiB':>7} (context {args.context})")
    for option in args.weights:
        row = run_child(args.model, option, args.context, args.new_tokens)
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{option:8} {row['estimate_bytes'] / mib:12.1f} {row['peak_bytes'] / mib:9.1f} "
                  f"{row['ratio']:8.2f} {row['tensor_bytes'] / mib:11.1f} {row['kv_bytes'] / mib:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
