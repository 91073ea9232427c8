"""Idefics3 / SmolVLM image-text model, pure torch: a SigLIP tower with NaViT-style positions
(VisionConfig family "idefics3"), a pixel-shuffle connector and our decoder.

An image reaches the model as tiles of the tower's size (the processor's grid of crops, then the
whole image shrunk to one tile); every tile becomes `tokens_per_tile` features: the tower's patch
grid is folded by `scale_factor` in each direction (pixel shuffle: scale_factor**2 neighbouring
patches side by side in one vector) and projected to the decoder's width by one bias-free linear.
Parameter names follow transformers' Idefics3Model (`connector.modality_projection.proj`), the
tower's SiglipVisionTransformer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import nn

from .config import ConfigError
from .transformer import Transformer
from .vision import VisionConfig, VisionTower, splice_images


@dataclass
class Idefics3Config:
    """How Idefics3 / SmolVLM join the vision tower to the decoder."""

    # The processor writes each image as <fake_token_around_image><row_r_col_c> + image tokens per
    # tile, then the global image (chatapp.text.images.image_run_ids).
    prompt_style: ClassVar[str] = "idefics3"

    vision: VisionConfig
    image_token_id: int
    scale_factor: int = 2

    def __post_init__(self) -> None:
        if self.vision.family != "idefics3":
            raise ConfigError(f"an Idefics3 model needs the idefics3 vision family, got {self.vision.family!r}")
        if not isinstance(self.scale_factor, int) or isinstance(self.scale_factor, bool) or self.scale_factor <= 0:
            raise ConfigError(f"scale_factor must be a positive integer, got {self.scale_factor!r}")
        if self.vision.grid % self.scale_factor:
            raise ConfigError(f"the vision tower's {self.vision.grid}x{self.vision.grid} patch grid does not "
                              f"fold by scale_factor {self.scale_factor}")

    @property
    def marker_token_id(self) -> int:
        """The token a chat template writes for an image (replaced by the image's run)."""
        return self.image_token_id

    @property
    def tile_size(self) -> int:
        return self.vision.image_size

    @property
    def tokens_per_image(self) -> int:
        """Image tokens one tile fills in the prompt (the processor's image_seq_len)."""
        return self.tokens_for(self.vision.image_size, self.vision.image_size)

    def tokens_for(self, height: int, width: int) -> int:
        """Image tokens one tile of height x width pixels fills (tiles are the tower's size)."""
        patches = (height // self.vision.patch_size) * (width // self.vision.patch_size)
        return patches // self.scale_factor ** 2


def pixel_shuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, seq, dim) patches of a square grid -> (N, seq / scale**2, dim * scale**2), as
    Idefics3Connector.pixel_shuffle orders them."""
    n, seq, dim = x.shape
    side = int(round(seq ** 0.5))
    if side * side != seq or side % scale:
        raise ValueError(f"{seq} patches are not a square grid that folds by {scale}")
    x = x.view(n, side, side // scale, dim * scale)              # fold columns
    x = x.permute(0, 2, 1, 3)                                    # (n, side/scale, side, dim*scale)
    x = x.reshape(n, side // scale, side // scale, dim * scale ** 2)  # fold rows
    x = x.permute(0, 2, 1, 3)                                    # back to (row, column) order
    return x.reshape(n, seq // scale ** 2, dim * scale ** 2)


class ModalityProjection(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Connector(nn.Module):
    def __init__(self, config: Idefics3Config, out_dim: int) -> None:
        super().__init__()
        self.scale_factor = config.scale_factor
        self.modality_projection = ModalityProjection(config.vision.dim * config.scale_factor ** 2, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.modality_projection(pixel_shuffle(x, self.scale_factor))


class Idefics3Model(nn.Module):
    """Vision tower + connector + decoder; the same interface as LlavaModel (embed, forward,
    image_features, config.image_token_id / tokens_for), with pixels as (tiles, C, H, W)."""

    def __init__(self, config: Idefics3Config, decoder: Transformer) -> None:
        super().__init__()
        self.config = config
        self.vision_tower = VisionTower(config.vision)
        self.connector = Connector(config, decoder.config.dim)
        self.decoder = decoder

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (tiles, C, H, W) -> (tiles, tokens_per_tile, decoder dim)."""
        return self.connector(self.vision_tower(pixels))

    def embed(self, tokens: torch.Tensor, pixels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return splice_images(self, tokens, pixels)

    def forward(self, tokens: torch.Tensor, pixels: Optional[torch.Tensor] = None,
                input_pos: Optional[torch.Tensor] = None, last_only: bool = False) -> torch.Tensor:
        return self.decoder(tokens, input_pos, last_only=last_only, embeds=self.embed(tokens, pixels))
