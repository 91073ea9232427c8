"""One-token decode through a mixture-of-experts block: ours (only the chosen experts run) against
running every expert and weighting (what a dense implementation would read), float32, CPU.

    .venv/bin/python benchmarks/moe_decode.py [--experts 64] [--top-k 8] [--dim 1024] [--hidden 768]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from chatapp.model import ModelConfig
from chatapp.model.moe import MoE, route


def all_experts(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on the token, weighted by the same routing (zero weight for unchosen ones)."""
    flat = x.reshape(-1, x.shape[-1])
    weights, experts = route(moe.router(flat), moe.top_k, moe.normalize)
    dense = torch.zeros(flat.shape[0], moe.gate_exps.shape[0]).scatter(1, experts, weights)  # (N, E)
    gate = torch.einsum("nd,ehd->neh", flat, moe.gate_exps)
    up = torch.einsum("nd,ehd->neh", flat, moe.up_exps)
    out = torch.einsum("neh,edh->ned", F.silu(gate) * up, moe.down_exps)  # (N, E, dim)
    return (out * dense[..., None]).sum(1).reshape(x.shape)


def timed(fn, x, repeat: int) -> float:
    fn(x)
    start = time.perf_counter()
    for _ in range(repeat):
        fn(x)
    return (time.perf_counter() - start) / repeat


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experts", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    config = ModelConfig(arch="qwen3_moe", vocab_size=16, dim=args.dim, n_layers=1, n_heads=8,
                         intermediate_size=args.hidden, max_seq_len=16, n_experts=args.experts,
                         n_experts_per_tok=args.top_k, qk_norm=True)
    torch.manual_seed(0)
    moe = MoE(config).eval()
    x = torch.randn(1, 1, args.dim)
    assert torch.allclose(moe(x), all_experts(moe, x), atol=1e-5)
    ours, dense = timed(moe, x, args.repeat), timed(lambda t: all_experts(moe, t), x, args.repeat)
    expert_mb = 3 * args.dim * args.hidden * 4 / 2**20
    print(json.dumps({"experts": args.experts, "top_k": args.top_k, "dim": args.dim, "hidden": args.hidden,
                      "weights_read_mb": {"ours": round(args.top_k * expert_mb, 1),
                                          "all_experts": round(args.experts * expert_mb, 1)},
                      "ms_per_token": {"ours": round(ours * 1e3, 2), "all_experts": round(dense * 1e3, 2)},
                      "speedup": round(dense / ours, 1)}))


if __name__ == "__main__":
    main()
