"""Image preprocessing against transformers' Pillow image processors, and bounded image opening."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from chatapp.text.images import ImageError, ImageSettings, open_image, preprocess, read_image_settings

transformers = pytest.importorskip("transformers")


def _images():
    rng = np.random.default_rng(0)
    rgb = lambda h, w: Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))  # noqa: E731
    rgba = Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8), "RGBA")
    gray = Image.fromarray(rng.integers(0, 256, (61, 29), dtype=np.uint8), "L")
    palette = rgb(40, 40).convert("P")
    return {"square": rgb(50, 50), "wide": rgb(31, 97), "tall": rgb(120, 45), "tiny": rgb(5, 7),
            "rgba": rgba, "gray": gray, "palette": palette}


CLIP = {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 32},
        "crop_size": {"height": 32, "width": 32}}
SIGLIP = {"image_processor_type": "SiglipImageProcessor", "size": {"height": 24, "width": 40}}


@pytest.mark.parametrize("kind", ["clip", "siglip"])
@pytest.mark.parametrize("name", list(_images()))
def test_matches_reference_processor(tmp_path, kind, name):
    settings_json = CLIP if kind == "clip" else SIGLIP
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(settings_json))
    ref_cls = transformers.CLIPImageProcessorPil if kind == "clip" else transformers.SiglipImageProcessorPil
    kwargs = {k: v for k, v in settings_json.items() if k != "image_processor_type"}
    ref = ref_cls(**kwargs)
    image = _images()[name]
    expected = ref(images=image, return_tensors="pt")["pixel_values"][0]
    got = torch.from_numpy(preprocess(image, read_image_settings(tmp_path)))
    assert got.shape == expected.shape
    assert torch.allclose(got, expected.float(), atol=1e-5), (got - expected).abs().max()


def test_nested_processor_config_is_read(tmp_path):
    (tmp_path / "processor_config.json").write_text(json.dumps({"image_processor": SIGLIP, "patch_size": 8}))
    settings = read_image_settings(tmp_path)
    assert settings.size == {"height": 24, "width": 40} and not settings.do_center_crop
    assert settings.image_mean == (0.5, 0.5, 0.5)


def test_defaults_without_files_are_clip(tmp_path):
    assert read_image_settings(tmp_path) == ImageSettings()


def test_bad_settings_name_the_file(tmp_path):
    from chatapp.errors import CorruptFileError

    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": {"shortest_edge": -1}}))
    with pytest.raises(CorruptFileError, match="preprocessor_config.json"):
        read_image_settings(tmp_path)


def _bounded(fn):
    start = time.monotonic()
    try:
        fn()
    finally:
        assert time.monotonic() - start < 5


def test_huge_dimensions_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (3000, 3000)).save(path)  # small file, 9 M pixels
    with pytest.raises(ImageError, match="3000x3000 pixels"):
        _bounded(lambda: open_image(path, max_pixels=1_000_000))


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (2000, 2000)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # Pillow refuses > 2x this when opening
    with pytest.raises(ImageError, match="bomb.png: the image is too large to decode safely"):
        _bounded(lambda: open_image(path))


def test_truncated_file_is_one_line(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageError, match="cut.png: the image is damaged or truncated") as info:
        _bounded(lambda: open_image(path))
    assert "\n" not in str(info.value)


def test_not_an_image_and_wrong_extension(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageError, match="notes.png: is not an image"):
        open_image(text)
    jpeg_named_png = tmp_path / "photo.png"
    Image.new("RGB", (10, 10), "red").save(jpeg_named_png, format="JPEG")
    assert open_image(jpeg_named_png).size == (10, 10)  # content decides, not the extension


def test_large_file_refused_by_size(tmp_path):
    path = tmp_path / "big.bmp"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ImageError, match="bytes; the limit is 1,000"):
        open_image(path, max_bytes=1000)
    with pytest.raises(ImageError, match="cannot read"):
        open_image(tmp_path / "missing.png")


def test_a_real_decompression_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    """Valid PNGs of 20000x20000 and 9000x9000 pixels in a few kilobytes (no limit lowered for the
    test): refused from the header, before Pillow unpacks them, within a second."""
    import resource

    from helpers.tiny_llava import bomb_png
    from chatapp.text.images import open_image_bytes

    # Pillow's own bomb check (over 2 x Image.MAX_IMAGE_PIXELS), and ours (IMAGE_MAX_PIXELS) below it
    cases = [(bomb_png(), "the image is too large to decode safely"),
             (bomb_png(9000, 9000), "the image is 9000x9000 pixels; the limit is 67,108,864 pixels")]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, the peak so far
    start = time.monotonic()
    for data, message in cases:
        assert len(data) < 200_000
        path = tmp_path / "bomb.png"
        path.write_bytes(data)
        for opener in (lambda: open_image(path), lambda: open_image_bytes(data, "pasted.png")):
            with pytest.raises(ImageError, match=rf"(bomb|pasted)\.png: {message}"):
                opener()
    assert time.monotonic() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # never decoded
