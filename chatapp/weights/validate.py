"""Check a loaded state dict against the shapes a ModelConfig implies."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..errors import ShapeMismatchError
from ..model.config import ModelConfig
from ..model.transformer import Transformer


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Our parameter names and shapes for `config` (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = Transformer(config)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    if config.tie_embeddings:
        shapes.pop("lm_head.weight", None)  # shares tok_embeddings.weight
    return shapes


def check_state_dict(config: ModelConfig, state: dict[str, torch.Tensor], path: Path | str) -> None:
    """Raise ShapeMismatchError naming the file when a tensor is missing, extra or misshapen."""
    check_shapes(expected_shapes(config), state, path, "the file is incomplete or not the model its config describes")


def check_shapes(expected: dict[str, tuple[int, ...]], state: dict[str, torch.Tensor], path: Path | str,
                 missing_hint: str, implied_by: str = "the config", extra_hint: Optional[str] = None,
                 extra_allowed: bool = False) -> None:
    """ShapeMismatchError naming `path` when `state` lacks a tensor of `expected` (with
    `missing_hint`), holds one it does not name (unless `extra_allowed`; with `extra_hint`), or one
    of another shape (`implied_by`: what the shapes come from). The one shape check every loader
    uses: decoders (check_state_dict), vision towers and projectors (weights.llava, weights.mmproj)."""
    missing = sorted(set(expected) - set(state))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ShapeMismatchError(path, f"missing tensors: {shown}", missing_hint)
    extra = [] if extra_allowed else sorted(set(state) - set(expected))
    if extra:
        raise ShapeMismatchError(path, f"unexpected tensors: {', '.join(extra[:5])}",
                                 extra_hint or f"{implied_by} does not describe these weights")
    for name, shape in expected.items():
        got = tuple(state[name].shape)
        if got != shape:
            raise ShapeMismatchError(path, f"tensor {name} has shape {list(got)} but {implied_by} implies {list(shape)}")
