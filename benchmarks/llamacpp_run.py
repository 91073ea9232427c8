"""llama.cpp's side of benchmarks/quantized.py, run by the python of benchmarks/.llamacpp-venv
(made by benchmarks/llamacpp_venv.sh), never by the app's: it imports only llama_cpp and numpy.

    benchmarks/.llamacpp-venv/bin/python benchmarks/llamacpp_run.py < request.json > result.json

The request (JSON on stdin) names the GGUF file, the threads, and token ids made by our
tokenizer, so both engines see the same inputs:
  {"model": path, "threads": 1, "decode_prompt": [37 ids], "new_tokens": 64,
   "prefill_prompt": [500 ids], "runs": 1, "perplexity_ids": [256 ids],
   "greedy_prompts": [[ids], ...], "greedy_tokens": 16, "chat": "What is the capital of France?"}
The result: decode and prefill tok/s (median of runs after one warm-up, greedy, as `chatapp
bench` measures them), perplexity over perplexity_ids, the greedy continuation of each greedy
prompt (ids) and the greedy chat reply (text, the GGUF's own chat template).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
from llama_cpp import Llama, __version__


def last_logits(llm: Llama) -> np.ndarray:
    """The last evaluated position's logits (without logits_all, llama-cpp-python keeps no copy
    in llm.scores: read llama.cpp's own buffer, which then holds only that row)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def timed_run(llm: Llama, prompt: list[int], new_tokens: int) -> tuple[float, float, list[int]]:
    """Prefill tok/s, decode tok/s, and the greedy ids: one prompt, then new_tokens steps."""
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    token = int(np.argmax(last_logits(llm)))
    prefill_s = time.perf_counter() - start
    out = [token]
    start = time.perf_counter()
    for _ in range(new_tokens - 1):
        llm.eval([token])
        token = int(np.argmax(last_logits(llm)))
        out.append(token)
    decode_s = time.perf_counter() - start
    return len(prompt) / prefill_s, (new_tokens - 1) / decode_s if new_tokens > 1 else 0.0, out


def main() -> int:
    req = json.load(sys.stdin)
    threads = int(req["threads"])
    n_ctx = max(len(req["prefill_prompt"]), len(req["perplexity_ids"]),
                len(req["decode_prompt"]) + req["new_tokens"]) + 64
    common = dict(model_path=req["model"], n_threads=threads, n_threads_batch=threads, n_batch=512,
                  verbose=False, seed=0)
    llm = Llama(n_ctx=n_ctx, **common)
    runs = int(req.get("runs", 1))
    decode, prefill = [], []
    for run in range(runs + 1):  # the first run warms up
        _, d, _ = timed_run(llm, req["decode_prompt"], req["new_tokens"])
        p, _, _ = timed_run(llm, req["prefill_prompt"], 1)
        if run:
            decode.append(d)
            prefill.append(p)
    greedy = [timed_run(llm, ids, req["greedy_tokens"])[2] for ids in req["greedy_prompts"]]
    chat = llm.create_chat_completion([{"role": "user", "content": req["chat"]}], temperature=0.0,
                                      max_tokens=32)["choices"][0]["message"]["content"]
    del llm
    # perplexity needs every position's logits
    llm = Llama(n_ctx=n_ctx, logits_all=True, **common)
    ids = req["perplexity_ids"]
    llm.eval(ids)
    logits = np.asarray(llm.scores[:len(ids) - 1], dtype=np.float64)  # (T-1, V)
    logits -= logits.max(-1, keepdims=True)
    logp = logits[np.arange(len(ids) - 1), ids[1:]] - np.log(np.exp(logits).sum(-1))
    result = {"llama_cpp": __version__, "threads": threads, "prompt_tokens": len(req["decode_prompt"]),
              "new_tokens": req["new_tokens"], "prefill_prompt_tokens": len(req["prefill_prompt"]),
              "decode_tok_s": statistics.median(decode), "prefill_tok_s": statistics.median(prefill),
              "perplexity": round(float(np.exp(-logp.mean())), 3), "continuations": greedy, "chat_reply": chat}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
