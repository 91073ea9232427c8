"""Weights options side by side, in one run: speed (`chatapp bench`, one process per option),
memory, and quality against float32, beside transformers float32 and llama.cpp.

    nice -n 10 .venv/bin/python benchmarks/quantized.py [--threads 1] [--new-tokens 64] [--options float32 int8 int4]
                                                        [--steps compiled eager] [--context 512]

Options: the --weights values, and "int8-q8_0": int8 kept in Q8_0's form with its float32-arithmetic
products (CHATAPP_INT8_PACK=0), beside "int8" (a scale per row, torch's int8 kernel: model/int8_rows.py),
and "int4-q4_1": int4 kept in Q4_1's form with its compiled products (CHATAPP_INT4_PACK=0), beside
"int4" (the same codes in torch's int4 kernel layout, bfloat16 scales and zeros: model/int4_rows.py,
its int8 vocabulary per row in torch's int8 kernel), and "int4-q8_0": those int4 layers with the
vocabulary kept in Q8_0 and its compiled product (CHATAPP_INT8_PACK=0).
Speed: decode tok/s after a 37-token prompt and prefill tok/s of a 500-token prompt (the
issue's settings), the weight bytes held and the bandwidth decode reaches (bytes held x
tokens/s), peak resident memory, which one-row products int8/int4 used (compiled/eager) and
which decode step ran (`--steps`: compiled as one graph, model/decode_step.py, or eager; each a
row, CHATAPP_DECODE_COMPILE in the bench's process). The step compiles once per context length
(the KV cache's size is part of the graph), so every bench runs at `--context`.
Quality: perplexity on a fixed text (the first demo document) and greedy agreement with
float32 (tokens equal before the first difference, over a fixed set of prompts).
llama.cpp: through llama-cpp-python in a virtual environment of its own, made by
benchmarks/llamacpp_venv.sh (benchmarks/.llamacpp-venv), never the app's; it runs in a child
process (benchmarks/llamacpp_run.py) on the same GGUF file with the same threads, the same
token ids (made by our tokenizer) for speed, perplexity and greedy agreement, and answers the
chat question with its own chat template. The row says "absent" when that venv is missing.
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
LLAMA_VENV = ROOT / "benchmarks" / ".llamacpp-venv"
CHAT = "What is the capital of France?"
PREFILL_TOKENS = 500


def weights_of(option: str) -> str:
    """The --weights value of a benchmark option ("int8-q8_0" -> "int8", "int4-q4_1" -> "int4")."""
    return option.removesuffix("-q8_0").removesuffix("-q4_1")


def form_env(option: str) -> dict:
    """The switches that keep the GGUF forms: CHATAPP_INT8_PACK=0 for "int8-q8_0" (and for
    "int4-q8_0": an int4 model's int8 vocabulary), CHATAPP_INT4_PACK=0 for "int4-q4_1"; the
    kernels' forms otherwise."""
    return {"CHATAPP_INT8_PACK": "0" if option.endswith("-q8_0") else "1",
            "CHATAPP_INT4_PACK": "0" if option.endswith("-q4_1") else "1"}


def bench(option: str, step: str, args) -> dict:
    """`chatapp bench` decode at 37 prompt tokens, then prefill of PREFILL_TOKENS, in two processes."""
    def run(prompt_tokens: int, new_tokens: int) -> dict:
        cmd = [sys.executable, "-m", "chatapp", "bench", "--model", args.model, "--weights", weights_of(option),
               "--device", "cpu", "--threads", str(args.threads), "--prompt-tokens", str(prompt_tokens),
               "--new-tokens", str(new_tokens), "--runs", str(args.runs), "--context", str(args.context), "--json"]
        env = dict(os.environ, PYTHONPATH=str(ROOT), CHATAPP_DECODE_COMPILE="1" if step == "compiled" else "0",
                   **form_env(option))
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
        return json.loads(out.stdout.strip().splitlines()[-1])

    decode = run(37, args.new_tokens)
    decode["prefill_37_tok_s"] = decode.pop("prefill_tok_s")
    decode["prefill_tok_s"] = run(PREFILL_TOKENS, 2)["prefill_tok_s"]
    return decode


def fixed_text_ids(tokenizer) -> list[int]:
    text = sorted((ROOT / "benchmarks" / "demo_docs").glob("*"))[0].read_text(encoding="utf-8")
    return tokenizer.encode(text)[:256]


def llama_cpp(reference: dict, args) -> dict | str:
    """llama.cpp's speed and quality on the same GGUF, in its own venv (see the module docstring)."""
    python = LLAMA_VENV / "bin" / "python"
    if not python.exists() or not list(LLAMA_VENV.glob("lib/python*/site-packages/llama_cpp/__init__.py")):
        return (f"absent: no {LLAMA_VENV.relative_to(ROOT)} with llama-cpp-python installed "
                "(benchmarks/llamacpp_venv.sh builds it: compiling C++ takes 20 minutes to hours)")
    loaded = reference["loaded"]
    vocab = loaded.config.vocab_size
    g = torch.Generator().manual_seed(1)
    request = {"model": str(resolve_model(args.model)), "threads": args.threads, "runs": args.runs,
               "decode_prompt": torch.randint(0, vocab, (37,), generator=g).tolist(),
               "prefill_prompt": torch.randint(0, vocab, (PREFILL_TOKENS,), generator=g).tolist(),
               "new_tokens": args.new_tokens, "perplexity_ids": fixed_text_ids(loaded.tokenizer),
               "greedy_prompts": [loaded.tokenizer.encode(p) for p in PROMPTS],
               "greedy_tokens": args.greedy_tokens, "chat": CHAT}
    out = subprocess.run([str(python), str(ROOT / "benchmarks" / "llamacpp_run.py")], input=json.dumps(request),
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        return f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    result = json.loads(out.stdout)
    agree = [agreement(c, r) for c, r in zip(result.pop("continuations"), reference["continuations"])]
    result["greedy_agreement"] = f"{sum(agree)}/{args.greedy_tokens * len(PROMPTS)}"
    return result


def quality(option: str, reference: dict, args) -> dict:
    os.environ.update(form_env(option))
    loaded = load_model(args.model, device="cpu", weights=weights_of(option), check_memory=False)
    text = sorted((ROOT / "benchmarks" / "demo_docs").glob("*"))[0].read_text(encoding="utf-8")
    ppl = text_perplexity(loaded.model, loaded.tokenizer, text, max_tokens=256)
    continuations = [greedy_ids(loaded.model, loaded.tokenizer, p, args.greedy_tokens) for p in PROMPTS]
    result = {"perplexity": round(ppl, 3), "continuations": continuations, "loaded": loaded}
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
    ap.add_argument("--steps", nargs="+", default=["compiled", "eager"], choices=["compiled", "eager"])
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--no-transformers", action="store_true")
    args = ap.parse_args()
    os.environ["CHATAPP_DECODE_COMPILE"] = "0"  # quality runs here need no compiled step
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    rows, reference, labels = {}, {}, []
    for option in args.options:
        q = quality(option, reference, args)
        if option == "float32":
            reference = q
        for step in args.steps:
            label = option if step == args.steps[0] else f"{option} ({step} step)"
            speed = bench(option, step, args)
            rows[label] = {**speed, **{k: v for k, v in q.items() if k not in ("continuations", "loaded")}}
            labels.append(label)
            log.info("%s: %s", label, json.dumps(rows[label]))
        if option != "float32":
            del q["loaded"]
    if not args.no_transformers:
        rows["transformers float32"] = transformers_speed(args)
        log.info("transformers: %s", rows["transformers float32"])
    rows["llama.cpp"] = llama_cpp(reference, args) if reference else "not run (needs the float32 reference)"
    log.info("llama.cpp: %s", rows["llama.cpp"])
    print(json.dumps(rows, indent=1))
    table(rows, labels)
    return 0


def table(rows: dict, options: list[str]) -> None:
    base = rows.get("float32", {}).get("decode_tok_s")
    ref = rows["llama.cpp"] if isinstance(rows["llama.cpp"], dict) else {}
    print(f"| weights | step | products | decode tok/s | vs float32 | vs llama.cpp | prefill tok/s ({PREFILL_TOKENS}) | "
          "vs llama.cpp | weight MB | decode GB/s | peak MiB | ppl | greedy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for option in options:
        r = rows[option]
        vs_ref = (f"{r['decode_tok_s'] / ref['decode_tok_s']:.2f}", f"{r['prefill_tok_s'] / ref['prefill_tok_s']:.2f}"
                  ) if ref else ("-", "-")
        print(f"| {option} | {r.get('decode_step', '-')} | {r.get('compact_products') or '-'} | {r['decode_tok_s']:.1f} | "
              f"{r['decode_tok_s'] / base if base else 0:.2f} | {vs_ref[0]} | {r['prefill_tok_s']:.0f} | {vs_ref[1]} | "
              f"{r['weight_bytes'] / 1e6:.0f} | {r['decode_weight_GBps']} | {r['peak_rss_bytes'] / 1024**2:.0f} | "
              f"{r['perplexity']} | {r.get('greedy_agreement', '-')} |")
    t = rows.get("transformers float32")
    if isinstance(t, dict):
        print(f"| transformers float32 | - | - | {t.get('decode_tok_s', 0):.1f} | | | {t.get('prefill_tok_s', 0):.0f} (37) |"
              " | | | | | |")
    if ref:
        print(f"| llama.cpp {ref['llama_cpp']} (file's Q4_1) | - | - | {ref['decode_tok_s']:.1f} | "
              f"{ref['decode_tok_s'] / base if base else 0:.2f} | 1.00 | {ref['prefill_tok_s']:.0f} | 1.00 | | | | "
              f"{ref['perplexity']} | {ref['greedy_agreement']} |")
        print(f"\nllama.cpp's greedy reply to {CHAT!r}: {ref['chat_reply']!r}")
    else:
        print(f"| llama.cpp | {rows['llama.cpp']} | | | | | | | | | | | |")


if __name__ == "__main__":
    sys.exit(main())
