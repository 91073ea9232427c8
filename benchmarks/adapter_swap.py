"""What the API server pays to run a request with another adapter than the one the model wears:
`ChatBackend.wear_adapter` there and back (read the PEFT folder, check it, attach the LoRA
layers, reset the KV cache).

    .venv/bin/python benchmarks/adapter_swap.py [--model default] [--rank 8] [--repeat 5]

Writes two random adapters (all of our LoRA target layers) for the model into a temporary folder,
loads the model wearing the first, then times putting the second on and the first back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    import torch

    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.model.lora import LORA_TARGETS, LoRAConfig, apply_lora, lora_layers, remove_lora
    from chatapp.weights.peft_adapter import save_adapter

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    backend = ChatBackend()
    backend.load(args.model, LoadOptions(context_len=512, threads=1))
    model = backend.loaded.model
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        config = LoRAConfig(r=args.rank, alpha=2 * args.rank, target_modules=list(LORA_TARGETS))
        for seed in (1, 2):
            apply_lora(model, config)
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for _, layer in lora_layers(model):
                    layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.01)
            folders.append(str(save_adapter(model, config, Path(tmp) / f"a{seed}", args.model)))
            remove_lora(model)
        backend.wear_adapter(folders[0])
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            backend.wear_adapter(folders[1])
            backend.wear_adapter(folders[0])
            times.append(time.perf_counter() - start)
        size = sum(p.stat().st_size for p in Path(folders[1]).iterdir())
    print(json.dumps({"model": args.model, "rank": args.rank, "adapter_bytes": size,
                      "swap_there_and_back_ms_median": round(1000 * statistics.median(times), 1),
                      "swap_there_and_back_ms_max": round(1000 * max(times), 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
