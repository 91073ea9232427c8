"""Gemma's attention paths measured: soft-capped attention (its own path: SDPA cannot cap scores)
against SDPA, and the window-only KV cache of sliding layers against a full cache.

    .venv/bin/python benchmarks/gemma_attention.py [--context 4096] [--prompt 3000] [--decode 64] [--threads 1]

A random Gemma-2-shaped model (half its layers sliding, window 512; smaller than the real ones so
it runs in a minute on a laptop CPU) in float32. Prints one JSON object: the KV cache bytes each
way, prefill seconds and decode tokens/s for full cache vs window cache, and soft-capped vs plain
SDPA attention, with the largest logit difference between the two caches (they must agree).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatapp.model.config import ModelConfig  # noqa: E402
from chatapp.model.transformer import Transformer  # noqa: E402


def model_for(context: int, softcap: bool) -> Transformer:
    n_layers = 8
    config = ModelConfig(arch="gemma2", vocab_size=4096, dim=512, n_layers=n_layers, n_heads=8, n_kv_heads=4,
                         head_dim=64, intermediate_size=1536, max_seq_len=context, norm_unit_offset=True,
                         post_norms=True, embed_scale=True, mlp="geglu", attn_scale=64 ** -0.5,
                         attn_softcap=50.0 if softcap else None, final_softcap=30.0, sliding_window=512,
                         layer_types=tuple("sliding_attention" if i % 2 == 0 else "full_attention"
                                           for i in range(n_layers)))
    torch.manual_seed(0)
    return Transformer(config).eval()


def cache_bytes(model: Transformer) -> int:
    return sum(buf.numel() * buf.element_size() for block in model.layers
               for name, buf in block.attn.kv_cache.named_buffers() if name in ("k", "v"))


@torch.inference_mode()
def run(model: Transformer, prompt: torch.Tensor, decode: int, window_cache: bool) -> dict:
    model.setup_cache(1, model.config.max_seq_len, window_cache=window_cache)
    start = time.perf_counter()
    logits = model(prompt, torch.arange(prompt.shape[1]), last_only=True)
    prefill = time.perf_counter() - start
    outs = [logits[0, -1]]
    start = time.perf_counter()
    for pos in range(prompt.shape[1], prompt.shape[1] + decode):
        token = outs[-1].argmax().view(1, 1)
        outs.append(model(token, torch.tensor([pos]))[0, -1])
    elapsed = time.perf_counter() - start
    result = {"kv_cache_bytes": cache_bytes(model), "prefill_s": round(prefill, 3),
              "decode_tok_s": round(decode / elapsed, 1)}
    model.clear_cache()
    return result, torch.stack(outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--prompt", type=int, default=3000)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prompt = torch.randint(0, 4096, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    report: dict = {"threads": torch.get_num_threads(), "context": args.context, "prompt": args.prompt}
    for softcap in (True, False):
        model = model_for(args.context, softcap)
        full, full_logits = run(model, prompt, args.decode, window_cache=False)
        window, window_logits = run(model, prompt, args.decode, window_cache=True)
        report["softcap" if softcap else "sdpa"] = {
            "full_cache": full, "window_cache": window,
            "max_logit_difference": float((full_logits - window_logits).abs().max())}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
