"""Gemma 3's image path, pure torch: a SigLIP tower, the average-pool projector with its soft
embedding norm, and our Gemma 3 decoder with image tokens attending to each other both ways.

An image (one tile of the tower's size) becomes `mm_tokens_per_image` soft tokens: the tower's
patch grid average-pooled down to sqrt(mm_tokens_per_image) per side, RMS-normed with Gemma's
(1 + w) weight, projected by a plain matrix (`mm_input_projection_weight`, vision dim x text dim).
The text embeddings are scaled by sqrt(dim) as Gemma's are; the image features are not. Inside
each run of image tokens attention is bidirectional (transformers' token_type_ids mask): the
decoder gets the runs as `attention_blocks`. Parameter names follow Gemma3Model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError
from .transformer import Transformer
from .vision import VisionConfig, VisionTower, splice_images


@dataclass
class Gemma3VisionConfig:
    """How Gemma 3 joins the vision tower to the decoder."""

    # The processor writes each image as "\n\n<start_of_image>" + image tokens + "<end_of_image>\n\n"
    # in place of the <start_of_image> marker the chat template puts (text.images.image_markup_text).
    prompt_style: ClassVar[str] = "gemma3"

    vision: VisionConfig
    image_token_id: int
    boi_token_id: int
    eoi_token_id: int
    mm_tokens_per_image: int = 256

    def __post_init__(self) -> None:
        if self.vision.family != "siglip":
            raise ConfigError(f"Gemma 3's vision tower is SigLIP, got {self.vision.family!r}")
        side = math.isqrt(self.mm_tokens_per_image) if self.mm_tokens_per_image > 0 else 0
        if side * side != self.mm_tokens_per_image or side == 0 or self.vision.grid % side:
            raise ConfigError(f"mm_tokens_per_image {self.mm_tokens_per_image} is not a square that pools the "
                              f"tower's {self.vision.grid}x{self.vision.grid} patch grid")

    @property
    def marker_token_id(self) -> int:
        """The token a chat template writes for an image (replaced by the image's run)."""
        return self.boi_token_id

    @property
    def tokens_per_image(self) -> int:
        return self.mm_tokens_per_image

    def tokens_for(self, height: int, width: int) -> int:
        """Image tokens one image fills; the processor always resizes to the tower's size."""
        return self.mm_tokens_per_image


class Gemma3Projector(nn.Module):
    def __init__(self, config: Gemma3VisionConfig, out_dim: int) -> None:
        super().__init__()
        vision = config.vision
        self.mm_input_projection_weight = nn.Parameter(torch.zeros(vision.dim, out_dim))
        self.mm_soft_emb_norm = nn.Module()
        self.mm_soft_emb_norm.weight = nn.Parameter(torch.zeros(vision.dim))
        self.eps = vision.norm_eps
        self.grid = vision.grid
        self.kernel = vision.grid // math.isqrt(config.mm_tokens_per_image)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, patches, vision dim) -> (N, mm_tokens_per_image, text dim)."""
        n, _, dim = x.shape
        grid = x.transpose(1, 2).reshape(n, dim, self.grid, self.grid)  # (N, dim, gh, gw)
        pooled = F.avg_pool2d(grid, self.kernel, self.kernel).flatten(2).transpose(1, 2)  # (N, tokens, dim)
        h = pooled.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        h = (h * (1.0 + self.mm_soft_emb_norm.weight.float())).type_as(pooled)
        return torch.matmul(h, self.mm_input_projection_weight).type_as(x)


def image_blocks(tokens: torch.Tensor, image_token_id: int) -> Optional[torch.Tensor]:
    """(T,) block ids for a row of tokens: each run of image tokens its own number, -1 elsewhere;
    None when there is no image token."""
    is_image = tokens == image_token_id
    if not bool(is_image.any()):
        return None
    starts = is_image & ~F.pad(is_image, (1, 0), value=False)[:-1]
    return torch.where(is_image, torch.cumsum(starts.long(), 0) - 1, torch.full_like(tokens, -1))


class Gemma3VisionModel(nn.Module):
    """Vision tower + projector + Gemma 3 decoder; LlavaModel's interface plus
    `attention_blocks(tokens)` for a driver with its own decode loop."""

    def __init__(self, config: Gemma3VisionConfig, decoder: Transformer) -> None:
        super().__init__()
        self.config = config
        self.vision_tower = VisionTower(config.vision)
        self.multi_modal_projector = Gemma3Projector(config, decoder.config.dim)
        self.decoder = decoder

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (N, C, H, W) -> (N, mm_tokens_per_image, decoder dim)."""
        return self.multi_modal_projector(self.vision_tower(pixels))

    def embed(self, tokens: torch.Tensor, pixels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return splice_images(self, tokens, pixels)

    def attention_blocks(self, tokens: torch.Tensor) -> Optional[torch.Tensor]:
        """Block ids (T,) of a one-row prompt's image token runs (see Transformer.forward)."""
        if tokens.shape[0] != 1:
            raise ValueError("Gemma 3 image prompts run one sequence at a time")
        return image_blocks(tokens[0], self.config.image_token_id)

    def forward(self, tokens: torch.Tensor, pixels: Optional[torch.Tensor] = None,
                input_pos: Optional[torch.Tensor] = None, last_only: bool = False) -> torch.Tensor:
        return self.decoder(tokens, input_pos, last_only=last_only, embeds=self.embed(tokens, pixels),
                            attention_blocks=self.attention_blocks(tokens))
