"""Checks shared by the image processors' settings (text/images.py, text/tiled_images.py): the
values read from a model's preprocessor_config.json that every processor normalises with."""

from __future__ import annotations

from typing import Any


def positive_int(d: Any, key: str) -> bool:
    """Whether `d` is a dict whose `key` holds a positive int (bools excluded)."""
    value = d.get(key) if isinstance(d, dict) else None
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_pixel_settings(settings: Any) -> None:
    """`settings.image_mean` / `image_std` made 3-float tuples (a single number repeats), std
    without zeros, and `resample` one of Pillow's filters; ValueError naming the field otherwise."""
    for name in ("image_mean", "image_std"):
        value = getattr(settings, name)
        if isinstance(value, (int, float)):
            value = (value,) * 3
        if len(value) != 3 or not all(isinstance(v, (int, float)) for v in value):
            raise ValueError(f"{name} must be 3 numbers, got {value!r}")
        setattr(settings, name, tuple(float(v) for v in value))
    if any(v == 0 for v in settings.image_std):
        raise ValueError("image_std must not contain 0")
    if settings.resample not in (0, 1, 2, 3, 4, 5):
        raise ValueError(f"resample {settings.resample!r} is not a Pillow resampling filter")
