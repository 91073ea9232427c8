"""What recording per-token log-probabilities costs the decode: tokens/s with `logprobs` off and
with top-K alternatives on, interleaved runs, the default model unless --model says otherwise.

    .venv/bin/python benchmarks/logprobs_cost.py [--model default] [--tokens 64] [--runs 5] [--top 5]

Prints one JSON object: median decode tok/s off and on and their difference in percent (noisy on
a shared machine), and the recording's own time per token measured alone on the model's logits,
as a share of one decode step (`record_percent`, the steady number).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import torch

    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.logprobs import LogprobRecorder
    from chatapp.engine.sampling import SamplingSettings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    backend = ChatBackend()
    info = backend.load(args.model, LoadOptions(context_len=1024, threads=args.threads))
    engine = backend.engine
    engine.eos_ids = set()  # exactly --tokens decode steps
    settings = SamplingSettings(temperature=0.7, seed=1, max_new_tokens=args.tokens)
    prompt = engine.tokenizer.encode("Write a short story about a lighthouse keeper and her cat.")
    speeds = {"off": [], "on": []}
    for run in range(args.runs + 1):
        for mode in ("off", "on"):  # interleaved: drift in machine load hits both alike
            engine.reset()
            engine.generate(prompt, settings, logprobs=args.top if mode == "on" else None)
            if run:  # the first round warms up
                speeds[mode].append(engine.reply.stats.decode_tok_s)
    off, on = statistics.median(speeds["off"]), statistics.median(speeds["on"])
    recorder = LogprobRecorder(engine.tokenizer, args.top)
    logits = torch.randn(engine.model.config.vocab_size)
    for i in range(50):
        recorder.record(logits, i, 0.5)
    start = time.perf_counter()
    for i in range(1000):
        recorder.record(logits, 1000 + i, 0.5)  # new ids: their text is decoded, not cached
    record_ms = (time.perf_counter() - start)
    print(json.dumps({"model": info.name, "tokens": args.tokens, "runs": args.runs, "top": args.top,
                      "decode_tok_s_off": round(off, 2), "decode_tok_s_on": round(on, 2),
                      "cost_percent": round(100 * (off - on) / off, 2), "record_ms": round(record_ms, 3),
                      "record_percent": round(100 * record_ms / (1000 / off), 2)}))


if __name__ == "__main__":
    main()
