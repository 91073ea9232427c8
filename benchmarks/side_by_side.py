"""What side by side costs: two panes advanced in turn versus the same two replies one after the other.

    .venv/bin/python benchmarks/side_by_side.py --adapter A [--adapter2 B] [--tokens 48] [--threads 1]

Loads the default model wearing adapter A, then for base|A (and A|B with --adapter2) runs the
two replies one after the other (ChatBackend.stream, the adapter switched by wear_adapter /
set_adapter_enabled between them) and side by side (ChatBackend.compare), with one seed, and
prints both wall times, the new tokens, and whether each pane wrote what its source wrote alone.
The machine is shared: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.side_by_side import PaneSource  # noqa: E402

QUESTION = "Who founded Halvorsen Lenswerks, and in which year?"


def alone(backend, source, settings, chat_adapter: str) -> tuple[str, int]:
    from chatapp.model.lora import set_lora_enabled

    if source.kind == "base":
        set_lora_enabled(backend.loaded.model, False)
    else:
        backend.wear_adapter(source.path)
        set_lora_enabled(backend.loaded.model, True)
    backend.engine.reset()
    try:
        text = "".join(backend.stream([{"role": "user", "content": QUESTION}], "", settings))
        return text, backend.finished().stats["new_tokens"]
    finally:
        backend.wear_adapter(chat_adapter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--adapter2", default="")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    backend = ChatBackend()
    info = backend.load("default", LoadOptions(threads=args.threads, adapter=args.adapter))
    settings = SamplingSettings(temperature=0.8, seed=5, max_new_tokens=args.tokens)
    pairs = [(PaneSource(), PaneSource("adapter", args.adapter))]
    if args.adapter2:
        pairs.append((PaneSource("adapter", args.adapter), PaneSource("adapter", args.adapter2)))
    for pair in pairs:
        started = time.perf_counter()
        expected = [alone(backend, source, settings, info.adapter) for source in pair]
        sequential_s = time.perf_counter() - started
        started = time.perf_counter()
        order = list(backend.compare(pair, [{"role": "user", "content": QUESTION}], "", settings))
        together_s = time.perf_counter() - started
        texts = ["".join(t for i, t in order if i == pane) for pane in range(2)]
        tokens = sum(n for _, n in expected)
        print(json.dumps({
            "panes": [s.kind if s.kind == "base" else Path(s.path).name for s in pair], "new_tokens": tokens,
            "one_after_the_other_s": round(sequential_s, 2), "side_by_side_s": round(together_s, 2),
            "tok_s_one_after_the_other": round(tokens / sequential_s, 1),
            "tok_s_side_by_side": round(tokens / together_s, 1),
            "same_text_as_alone": texts == [text for text, _ in expected]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
