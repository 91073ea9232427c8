"""Turn (config, state dict) into a ready Transformer without a second copy of the weights."""

from __future__ import annotations

import torch

from ..model.config import ModelConfig
from ..model.quant import QuantizedTensor, install_quantized, map_parts
from ..model.transformer import Transformer


def build_model(config: ModelConfig, state: dict[str, torch.Tensor | QuantizedTensor],
                device: torch.device | str = "cpu") -> Transformer:
    """A Transformer in eval mode holding `state`'s tensors (moved to `device`).

    QuantizedTensor values (compact weights, chatapp.model.quant) replace their layers with
    the compact forms."""
    with torch.device("meta"):
        model = Transformer(config)
    compact = {name: map_parts(t, lambda p: p.to(device)) for name, t in state.items()
               if isinstance(t, QuantizedTensor)}
    state = {name: t.to(device) for name, t in state.items() if not isinstance(t, QuantizedTensor)}
    # assign=True adopts our tensors instead of copying into freshly allocated ones.
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    allowed_missing = set(compact) | ({"lm_head.weight"} if config.tie_embeddings else set())
    if set(missing) - allowed_missing or unexpected:
        raise ValueError(f"state dict does not fit the model: missing {missing}, unexpected {unexpected}")
    if config.tie_embeddings and "tok_embeddings.weight" not in compact:
        model.lm_head.weight = model.tok_embeddings.weight
    install_quantized(model, compact)
    # Buffers computed in __init__ (RoPE frequencies) were created on meta: compute them for real.
    model.init_buffers(device)
    return model.eval()
