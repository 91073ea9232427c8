"""LoRA training speed: our trainer against transformers + peft on the default model, same run.

    .venv/bin/python benchmarks/lora_speed.py [--steps 6] [--warmup 2] [--batch-size 2] [--block-size 256]

Both: the default GGUF dequantized to float32 on the CPU, LoRA r=8 alpha=16 on q_proj and
v_proj, dropout 0, AdamW lr 2e-4, the same random token blocks, the same thread count.
Ours is chatapp's Trainer (its step timing from the progress events); the reference is a
plain PyTorch loop over peft's model (forward with labels, backward, AdamW step). Prints
training tokens/s for each and the ratio, median over the timed steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatapp.engine.loader import load_model, resolve_model  # noqa: E402
from chatapp.model.lora import LoRAConfig  # noqa: E402
from chatapp.training.dataset import TokenBlocks  # noqa: E402
from chatapp.training.trainer import TrainConfig, Trainer  # noqa: E402


def ours(blocks: torch.Tensor, args) -> list[float]:
    """Seconds per optimizer step of chatapp's Trainer, warm-up steps dropped."""
    model = load_model("default", device="cpu").model
    config = TrainConfig(method="lora", lr=2e-4, warmup_steps=0, max_steps=args.warmup + args.steps,
                         batch_size=args.batch_size, block_size=args.block_size, eval_every=0, grad_clip=0.0,
                         lora=LoRAConfig(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    stamps: list[float] = []

    def progress(event: dict) -> None:
        if event.get("event") == "step":
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        trainer = Trainer(model, config, TokenBlocks(blocks), val=None, checkpoint_dir=tmp, progress=progress)
        trainer.fit()
    times = [b - a for a, b in zip([start] + stamps, stamps)]
    return times[args.warmup:]


def reference(blocks: torch.Tensor, args) -> list[float]:
    """Seconds per optimizer step of transformers + peft in a plain training loop."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    path = resolve_model("default")
    gguf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # transformers' GGUF load marks the model not trainable: copy it into a plain Llama.
    model = LlamaForCausalLM(gguf_model.config)
    model.load_state_dict(gguf_model.state_dict())
    del gguf_model
    model = get_peft_model(model, PeftLoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                 target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    g = torch.Generator().manual_seed(0)
    times = []
    for step in range(args.warmup + args.steps):
        idx = torch.randint(0, blocks.shape[0], (args.batch_size,), generator=g)
        batch = blocks[idx]
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out = model(input_ids=batch[:, :-1], labels=batch[:, :-1].clone())
        out.loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times[args.warmup:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    blocks = torch.randint(0, 49152, (32, args.block_size + 1), generator=g)
    tokens = args.batch_size * args.block_size
    ours_s = statistics.median(ours(blocks, args))
    torch.set_num_threads(args.threads)
    ref_s = statistics.median(reference(blocks, args))
    result = {"batch_size": args.batch_size, "block_size": args.block_size, "threads": args.threads,
              "steps": args.steps, "ours_tok_s": tokens / ours_s, "reference_tok_s": tokens / ref_s,
              "ratio": ref_s / ours_s}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"LoRA training, default model, float32, batch {args.batch_size} x block {args.block_size}, "
              f"{args.threads} threads, median of {args.steps} steps")
        print(f"ours (chatapp Trainer)       {result['ours_tok_s']:8.0f} tok/s")
        print(f"transformers + peft          {result['reference_tok_s']:8.0f} tok/s")
        print(f"ratio                        {result['ratio']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
