"""Cost of one LoRA training micro-batch of the knowledge recipe, by variant (README "Cost of a
training step"): wall and CPU seconds of forward + backward over the recipe's first 4 blocks of
256 tokens of benchmarks/knowledge_docs, LoRA r=32 on every projection.

    T=1 R=2 .venv/bin/python benchmarks/training_step.py f32,sel,sel-ac,sel-bfw

Variants (joined by "-"): f32 logits at every position; sel logits only where a label is
(`logits_at`, what training does); ac under bf16 autocast (training on a CPU with bf16
products); bfw base weights stored in bf16; qv LoRA on q,v only; r8 / r16 rank 8 / 16.
T: torch threads; R: timed repetitions after one warm-up. On a shared machine compare CPU seconds.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch
    import torch.nn.functional as F

    from chatapp.engine.loader import load_model
    from chatapp.model.linear import configure_fast_paths
    from chatapp.model.lora import LORA_TARGETS, LoRAConfig, apply_lora
    from chatapp.training.dataset import IGNORE_INDEX, pack_examples
    from chatapp.training.knowledge import (KnowledgeConfig, build_examples, encode_example, group_turns,
                                            split_examples)
    from chatapp.training.prepare import read_sources
    from chatapp.training.trainer import _token_loss_sum

    torch.set_num_threads(int(os.environ.get("T", "2")))
    reps = max(1, int(os.environ.get("R", "3")))
    variants = (sys.argv[1] if len(sys.argv) > 1 else "f32,sel,sel-ac").split(",")
    loaded = load_model("default")
    tok = loaded.tokenizer
    docs = [(e.source, e.text or "") for e in read_sources([ROOT / "benchmarks" / "knowledge_docs"]).examples]
    train, _ = split_examples(build_examples(docs, KnowledgeConfig(), None), 0.1, 0)
    random.Random(0).shuffle(train)
    blocks = pack_examples((encode_example(e, tok) for e in group_turns(train, 2)), 256, tok.eos_id)
    inputs, labels = blocks.batch(torch.arange(4))
    print(f"labels at {float((labels != IGNORE_INDEX).float().mean()):.1%} of the positions", flush=True)

    def every_position(model, x, y):
        logits = model(x)  # (B, T, V)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")

    for variant in variants:
        parts = set(variant.split("-"))
        model = copy.deepcopy(loaded.model)
        if "bfw" in parts:
            model = model.to(torch.bfloat16)
        rank = 8 if "r8" in parts else 16 if "r16" in parts else 32
        targets = ["q_proj", "v_proj"] if "qv" in parts else list(LORA_TARGETS)
        apply_lora(model, LoRAConfig(r=rank, alpha=2 * rank, dropout=0.05, target_modules=targets),
                   dtype=torch.float32)
        configure_fast_paths(model, onednn=True)
        model.train()
        loss_fn = _token_loss_sum if "sel" in parts else every_position
        times = []
        for rep in range(reps + 1):
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if "ac" in parts else contextlib.nullcontext()
            wall, cpu = time.perf_counter(), time.process_time()
            with autocast:
                loss = loss_fn(model, inputs, labels)
            loss.backward()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            model.zero_grad(set_to_none=True)
            if rep:
                times.append((wall, cpu))
        print(f"{variant:16s} wall {min(t[0] for t in times):6.2f} s  cpu {min(t[1] for t in times):6.2f} s  "
              f"loss {loss.item():.2f}  load {os.getloadavg()[0]:.1f}", flush=True)
        del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
