"""Idefics3 / SmolVLM image preprocessing: tiles of the vision tower's size plus the global image,
as transformers' Idefics3ImageProcessor / SmolVLMImageProcessor (Pillow backend) make them, and
the prompt text their processors write for each image.

Steps (on 8-bit Pillow images, like the reference): convert to RGB (transparency onto white),
resize so the longest edge is size["longest_edge"] (the other edge rounded up to even, both
capped at 4096), then with splitting: resize each edge up to a multiple of the tile size, cut
row-major tiles and append the whole image resized to one tile; without splitting: one tile.
Then rescale and normalize (chatapp.text.images.rescale_normalize).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .image_checks import check_pixel_settings, positive_int

MAX_IMAGE_SIZE = 4096  # transformers' cap on the resized image's edges
PROCESSOR_TYPES = ("Idefics3ImageProcessor", "SmolVLMImageProcessor")
FAKE_TOKEN = "<fake_token_around_image>"
GLOBAL_TOKEN = "<global-img>"


@dataclass
class TiledImageSettings:
    """What an Idefics3 / SmolVLM image processor does; transformers' defaults."""

    size: dict = field(default_factory=lambda: {"longest_edge": 4 * 364})
    max_image_size: dict = field(default_factory=lambda: {"longest_edge": 364})
    do_resize: bool = True
    do_image_splitting: bool = True
    do_rescale: bool = True
    do_normalize: bool = True
    do_convert_rgb: bool = True
    resample: int = 1  # Pillow's LANCZOS
    rescale_factor: float = 1 / 255
    image_mean: tuple = (0.5, 0.5, 0.5)
    image_std: tuple = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.do_resize and not (positive_int(self.size, "longest_edge") or
                                   (positive_int(self.size, "height") and positive_int(self.size, "width"))):
            raise ValueError(f"image size {self.size!r} needs a positive 'longest_edge' or 'height' and 'width'")
        if not positive_int(self.max_image_size, "longest_edge"):
            raise ValueError(f"max_image_size {self.max_image_size!r} needs a positive 'longest_edge'")
        check_pixel_settings(self)

    @property
    def tile(self) -> int:
        return self.max_image_size["longest_edge"]

    @classmethod
    def from_dict(cls, data: dict) -> "TiledImageSettings":
        """From a processor's saved settings (ValueError / TypeError when unusable)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})


@dataclass
class PreparedImage:
    """One image ready for a model: pixels (tiles, 3, H, W) float32 and its tile grid (0 x 0: a
    single tile, no grid), or (Gemma 3's pan-and-scan) the whole image then `crops` crops."""

    pixels: np.ndarray
    rows: int = 0
    cols: int = 0
    crops: int = 0


def longest_edge_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(height, width) with the longest edge at `longest`, the other even, both at most 4096."""
    aspect = width / height
    if width >= height:
        width = longest
        height = int(width / aspect)
        height += height % 2
    else:
        height = longest
        width = int(height * aspect)
        width += width % 2
    height, width = max(height, 1), max(width, 1)
    aspect = width / height
    if width >= height and width > MAX_IMAGE_SIZE:
        width, height = MAX_IMAGE_SIZE, int(MAX_IMAGE_SIZE / aspect)
    elif height > width and height > MAX_IMAGE_SIZE:
        height, width = MAX_IMAGE_SIZE, int(MAX_IMAGE_SIZE * aspect)
    return max(height, 1), max(width, 1)


def tile_multiple_size(height: int, width: int, tile: int) -> tuple[int, int]:
    """(height, width) rounded up to multiples of `tile`, the longer edge first."""
    aspect = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / aspect) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * aspect) / tile) * tile
    return height, width


def tile_image(image, settings: TiledImageSettings) -> tuple[list, int, int]:
    """A Pillow RGB image -> (Pillow tiles: row-major crops then the global image, rows, cols);
    (one tile, 0, 0) when the image fits one tile or splitting is off."""
    tile = settings.tile
    if settings.do_resize:
        if positive_int(settings.size, "longest_edge"):
            height, width = longest_edge_size(image.height, image.width, settings.size["longest_edge"])
        else:
            height, width = settings.size["height"], settings.size["width"]
        image = image.resize((width, height), resample=settings.resample)
    if not settings.do_image_splitting:
        return [image.resize((tile, tile), resample=settings.resample)], 0, 0
    height, width = tile_multiple_size(image.height, image.width, tile)
    image = image.resize((width, height), resample=settings.resample)
    if height <= tile and width <= tile:
        return [image], 0, 0
    rows, cols = (height - tile) // tile + 1, (width - tile) // tile + 1
    tiles = [image.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)) for r in range(rows) for c in range(cols)]
    tiles.append(image.resize((tile, tile), resample=settings.resample))
    return tiles, rows, cols


def image_markup(rows: int, cols: int, tokens_per_tile: int, image_token: str) -> str:
    """The text Idefics3Processor / SmolVLMProcessor put in place of one image marker."""
    run = image_token * tokens_per_tile
    whole = f"{FAKE_TOKEN}{GLOBAL_TOKEN}{run}{FAKE_TOKEN}"
    if rows == 0 and cols == 0:
        return whole
    text = ""
    for r in range(rows):
        for c in range(cols):
            text += f"{FAKE_TOKEN}<row_{r + 1}_col_{c + 1}>{run}"
        text += "\n"
    return text + "\n" + whole
