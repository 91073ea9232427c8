"""Gemma 3's pan-and-scan: a long image is also given as a few crops along its long side, as
transformers' Gemma3ImageProcessor makes them (`do_pan_and_scan` in the processor config).

The crops are cut from the image at its own resolution (after RGB conversion, before resizing):
for a landscape image whose width / height is at least `min_ratio`, about width / height crops
side by side (rounded half up), no more than width // `min_crop` and `max_crops`, at least 2;
a portrait image the same along its height; none when a crop would be narrower than `min_crop`.
Each crop is then preprocessed as a whole image is (resized to the tower's size), and the
prompt writes the original image, then the crops (text.images.image_markup_text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Gemma3Processor's defaults (its images_kwargs), used where the processor config leaves them null
MIN_CROP_SIZE = 256
MAX_NUM_CROPS = 4
MIN_RATIO_TO_ACTIVATE = 1.2


@dataclass
class PanAndScan:
    min_crop_size: int = MIN_CROP_SIZE
    max_num_crops: int = MAX_NUM_CROPS
    min_ratio_to_activate: float = MIN_RATIO_TO_ACTIVATE

    def __post_init__(self) -> None:
        for name in ("min_crop_size", "max_num_crops"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"pan_and_scan_{name} must be a whole number of at least 1, got {value!r}")
        ratio = self.min_ratio_to_activate
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not math.isfinite(ratio) or ratio <= 0:
            raise ValueError(f"pan_and_scan_min_ratio_to_activate must be a positive number, got {ratio!r}")

    @classmethod
    def from_dict(cls, data: dict) -> "PanAndScan":
        """From a processor config's pan_and_scan_* keys (null or absent: Gemma3Processor's defaults)."""
        values = {name: data.get(f"pan_and_scan_{name}") for name in cls.__dataclass_fields__}
        return cls(**{name: value for name, value in values.items() if value is not None})

    def boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The crops of a width x height image as Pillow boxes (left, top, right, bottom), row-major;
        [] when the image is not long enough to be cut."""
        if width >= height:
            if width / height < self.min_ratio_to_activate:
                return []
            across = min(math.floor(width / self.min_crop_size), math.floor(width / height + 0.5))
            across, down = min(self.max_num_crops, max(2, across)), 1
        else:
            if height / width < self.min_ratio_to_activate:
                return []
            down = min(math.floor(height / self.min_crop_size), math.floor(height / width + 0.5))
            across, down = 1, min(self.max_num_crops, max(2, down))
        crop_w, crop_h = math.ceil(width / across), math.ceil(height / down)
        if min(crop_w, crop_h) < self.min_crop_size:
            return []
        # the last crop stops at the image's edge (the reference slices an array: no padding)
        return [(x, y, min(x + crop_w, width), min(y + crop_h, height))
                for y in range(0, crop_h * down, crop_h) for x in range(0, crop_w * across, crop_w)]


def crop_images(image, settings: PanAndScan) -> list:
    """The Pillow image's pan-and-scan crops (Pillow images), [] when it is not cut."""
    return [image.crop(box) for box in settings.boxes(image.width, image.height)]
