"""Images for vision models: open a file safely, preprocess as CLIP / SigLIP image processors do.

Opening is bounded: the file size is checked before reading, the pixel size from the header
before decoding (a decompression bomb is refused without allocating it), and any decoding error
(truncated file, not an image, a wrong extension) becomes one ImageError line naming the file.

Preprocessing follows transformers' CLIPImageProcessor / SiglipImageProcessor (Pillow backend):
convert to RGB (transparency composited onto white), resize (shortest edge keeping the aspect
ratio, or a fixed height x width) with Pillow's resampling, center crop, rescale, normalize;
Idefics3 / SmolVLM processors tile the image (chatapp.text.tiled_images). Settings come from the
model folder's preprocessor_config.json, or processor_config.json's "image_processor" object
(transformers 5).

Any model the same way: `prepare_image` (pixels of one image as tiles), `image_markup_text` /
`image_run_ids` (what stands for it in the prompt, from the loaded model's config),
`image_prompt_ids(..., image_runs=..., marker_id=config.marker_token_id)` (the whole prompt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import limits
from ..errors import CorruptFileError
from ..paths import read_json_object
from .image_checks import check_pixel_settings, positive_int
from .pan_and_scan import PanAndScan, crop_images
from .tiled_images import (FAKE_TOKEN, GLOBAL_TOKEN, PROCESSOR_TYPES, PreparedImage, TiledImageSettings,
                           image_markup, tile_image)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
STANDARD_MEAN = (0.5, 0.5, 0.5)
STANDARD_STD = (0.5, 0.5, 0.5)


class ImageError(ValueError):
    """An image file that cannot be used; the message is one line naming the file."""


@dataclass
class ImageSettings:
    """What an image processor does; CLIP's defaults (SigLIP: `siglip_defaults`)."""

    size: dict = field(default_factory=lambda: {"shortest_edge": 224})
    crop_size: Optional[dict] = field(default_factory=lambda: {"height": 224, "width": 224})
    do_resize: bool = True
    do_center_crop: bool = True
    do_rescale: bool = True
    do_normalize: bool = True
    do_convert_rgb: bool = True
    resample: int = 3  # Pillow's BICUBIC
    rescale_factor: float = 1 / 255
    image_mean: tuple = CLIP_MEAN
    image_std: tuple = CLIP_STD
    pan_and_scan: Optional[PanAndScan] = None  # Gemma 3's crops of a long image, when its config turns them on

    def __post_init__(self) -> None:
        if self.do_resize and not (positive_int(self.size, "shortest_edge") or
                                   (positive_int(self.size, "height") and positive_int(self.size, "width"))):
            raise ValueError(f"image size {self.size!r} needs a positive 'shortest_edge' or 'height' and 'width'")
        if self.do_center_crop and not (positive_int(self.crop_size, "height") and positive_int(self.crop_size, "width")):
            raise ValueError(f"crop_size {self.crop_size!r} needs positive 'height' and 'width'")
        check_pixel_settings(self)

    @classmethod
    def siglip_defaults(cls) -> "ImageSettings":
        return cls(size={"height": 224, "width": 224}, crop_size=None, do_center_crop=False,
                   image_mean=STANDARD_MEAN, image_std=STANDARD_STD)

    @classmethod
    def gemma3_defaults(cls) -> "ImageSettings":
        """Gemma3ImageProcessor's: SigLIP's with bilinear resampling (pan-and-scan off, as by default)."""
        return cls(size={"height": 224, "width": 224}, crop_size=None, do_center_crop=False, resample=2,
                   image_mean=STANDARD_MEAN, image_std=STANDARD_STD)


_FIELDS = ("size", "crop_size", "do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_convert_rgb",
           "resample", "rescale_factor", "image_mean", "image_std")


def read_image_settings(folder: Path | str) -> "ImageSettings | TiledImageSettings":
    """The image processor settings of a model folder; CorruptFileError naming the file when bad;
    when the folder has neither file, the defaults of its model type's processor (CLIP's for
    LLaVA). TiledImageSettings for Idefics3 / SmolVLM processors."""
    folder = Path(folder)
    data: Optional[dict] = None
    path = folder / "preprocessor_config.json"
    if path.is_file():
        data = read_json_object(path)
    else:
        path = folder / "processor_config.json"
        if path.is_file():
            data = read_json_object(path).get("image_processor")
            if not isinstance(data, dict):
                raise CorruptFileError(path, "has no 'image_processor' object")
    if data is None:
        kind = _model_type(folder)
        if kind == "gemma3":
            return ImageSettings.gemma3_defaults()
        return TiledImageSettings() if kind in ("idefics3", "smolvlm") else ImageSettings()
    kind = str(data.get("image_processor_type", ""))
    pan_and_scan = None
    if data.get("do_pan_and_scan"):
        if not kind.startswith("Gemma3ImageProcessor"):
            raise CorruptFileError(path, f"asks for pan-and-scan crops (do_pan_and_scan), which only Gemma 3's "
                                         f"image processor makes, not {kind or 'this model'}'s")
        try:
            pan_and_scan = PanAndScan.from_dict(data)
        except ValueError as exc:
            raise CorruptFileError(path, f"has unusable pan-and-scan settings: {exc}") from exc
    if kind.startswith(PROCESSOR_TYPES):  # also their "...Fast" / "...Pil" names
        try:
            return TiledImageSettings.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise CorruptFileError(path, f"has unusable image settings: {exc}") from exc
    base = ImageSettings.siglip_defaults() if kind.lower().startswith("siglip") else ImageSettings()
    if kind.startswith("Gemma3ImageProcessor"):
        base = ImageSettings.gemma3_defaults()
    values = {name: getattr(base, name) for name in _FIELDS}
    values.update({k: data[k] for k in _FIELDS if data.get(k) is not None})
    if isinstance(values["size"], int):  # very old configs: a square size
        values["size"] = {"height": values["size"], "width": values["size"]}
    if isinstance(values["crop_size"], int):
        values["crop_size"] = {"height": values["crop_size"], "width": values["crop_size"]}
    try:
        return ImageSettings(**values, pan_and_scan=pan_and_scan)
    except (ValueError, TypeError) as exc:
        raise CorruptFileError(path, f"has unusable image settings: {exc}") from exc


def _model_type(folder: Path) -> Any:
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        return read_json_object(path).get("model_type")
    except (CorruptFileError, OSError):
        return None


def open_image(path: Path | str, max_bytes: Optional[int] = None, max_pixels: Optional[int] = None):
    """A decoded Pillow image from `path`; ImageError (one line naming the file) when it is too
    large, not an image, or damaged. Sizes are checked before decoding."""
    path = Path(path)
    max_bytes = limits.IMAGE_MAX_BYTES if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the image ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise ImageError(f"{path}: is not a file")
    if size > max_bytes:
        raise ImageError(f"{path}: the image file is {size:,} bytes; the limit is {max_bytes:,}")
    return _decode(path, str(path), max_pixels)


def open_image_bytes(data: bytes, name: str = "image", max_bytes: Optional[int] = None,
                     max_pixels: Optional[int] = None):
    """open_image for an image held in memory (pasted, stored with a message, sent to the API);
    `name` labels it in the error."""
    import io

    max_bytes = limits.IMAGE_MAX_BYTES if max_bytes is None else max_bytes
    if len(data) > max_bytes:
        raise ImageError(f"{name}: the image is {len(data):,} bytes; the limit is {max_bytes:,}")
    if not data:
        raise ImageError(f"{name}: the image is empty")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(source, label: str, max_pixels: Optional[int]):
    from PIL import Image, UnidentifiedImageError

    max_pixels = limits.IMAGE_MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(source) as image:  # reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"{label}: the image is {width}x{height} pixels; the limit is "
                                 f"{max_pixels:,} pixels")
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # animations: the first frame
            image.load()
            return image.copy()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: the image is too large to decode safely "
                         f"({str(exc).splitlines()[0][:120]})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label}: is not an image Pillow can read ({_detail(exc)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}: the image is damaged or truncated ({_detail(exc)})") from exc


def _detail(exc: BaseException) -> str:
    """Pillow's message, one line, without the repr of an in-memory file it names."""
    import re

    return re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc).splitlines()[0] if str(exc) else "")[:120]


def to_rgb(image):
    """RGB, transparency composited onto white (transformers' convert_to_rgb)."""
    from PIL import Image

    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resized_size(height: int, width: int, size: dict) -> tuple[int, int]:
    """(height, width) after resizing, as transformers computes it."""
    if positive_int(size, "shortest_edge"):
        edge = size["shortest_edge"]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = edge, int(edge * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)
    return size["height"], size["width"]


def _center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """array (C, H, W) cropped to (height, width) around the center, zero-padded when smaller."""
    _, h, w = array.shape
    top, left = (h - height) // 2, (w - width) // 2
    if top >= 0 and left >= 0:
        return array[:, top:top + height, left:left + width]
    new_h, new_w = max(height, h), max(width, w)
    padded = np.zeros(array.shape[:1] + (new_h, new_w), dtype=array.dtype)
    pad_top, pad_left = math.ceil((new_h - h) / 2), math.ceil((new_w - w) / 2)
    padded[:, pad_top:pad_top + h, pad_left:pad_left + w] = array
    top, left = top + pad_top, left + pad_left
    return padded[:, max(top, 0):max(top, 0) + height, max(left, 0):max(left, 0) + width]


def preprocess(image, settings: ImageSettings) -> np.ndarray:
    """A Pillow image -> pixel values (3, H, W) float32 (numpy: chatapp/text needs no torch)."""
    if settings.do_convert_rgb:
        image = to_rgb(image)
    if settings.do_resize:
        height, width = resized_size(image.height, image.width, settings.size)
        image = image.resize((width, height), resample=settings.resample)
    array = _channels_first(image)
    if settings.do_center_crop:
        array = _center_crop(array, settings.crop_size["height"], settings.crop_size["width"])
    return rescale_normalize(array, settings)


def _channels_first(image) -> np.ndarray:
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def rescale_normalize(array: np.ndarray, settings) -> np.ndarray:
    """(C, H, W) 8-bit values -> float32, rescaled and normalized as the settings say (the
    reference's arithmetic: rescale in float64, normalize in float32)."""
    if settings.do_rescale:
        array = (array.astype(np.float64) * settings.rescale_factor).astype(np.float32)
    if settings.do_normalize:
        mean = np.array(settings.image_mean, dtype=np.float32)[:, None, None]
        std = np.array(settings.image_std, dtype=np.float32)[:, None, None]
        array = (array.astype(np.float32) - mean) / std
    return np.ascontiguousarray(array, dtype=np.float32)


def prepare_image(image, settings: "ImageSettings | TiledImageSettings") -> PreparedImage:
    """A Pillow image -> PreparedImage for any supported model: pixels (tiles, 3, H, W), one tile
    for CLIP / SigLIP processors, the tile grid and global image for Idefics3 / SmolVLM."""
    if isinstance(settings, ImageSettings):
        if settings.pan_and_scan is None:
            return PreparedImage(preprocess(image, settings)[None])
        if settings.do_convert_rgb:  # cropped as the reference crops: the RGB image at its own size
            image = to_rgb(image)
        crops = crop_images(image, settings.pan_and_scan)
        return PreparedImage(np.stack([preprocess(part, settings) for part in [image] + crops]), crops=len(crops))
    if settings.do_convert_rgb:
        image = to_rgb(image)
    tiles, rows, cols = tile_image(image, settings)
    return PreparedImage(np.stack([rescale_normalize(_channels_first(t), settings) for t in tiles]), rows, cols)


def image_markup_text(tokenizer, config, prepared: PreparedImage) -> str:
    """The text that stands for one prepared image in the prompt, as the model's processor writes
    it in place of the image marker; `config` is the loaded model's config (prompt_style,
    image_token_id, tokens_for; Gemma 3: boi / eoi_token_id). ValueError naming a marker token
    the tokenizer lacks."""
    style = getattr(config, "prompt_style", "llava")
    height, width = prepared.pixels.shape[-2:]
    image_token = tokenizer.id_to_token(config.image_token_id)
    if not image_token:
        raise ValueError(f"the tokenizer has no token {config.image_token_id} for images")
    count = config.tokens_for(height, width)
    if style == "llava":
        return image_token * count
    if style == "idefics3":
        needed = [FAKE_TOKEN, GLOBAL_TOKEN] + [f"<row_{r + 1}_col_{c + 1}>" for r in range(prepared.rows)
                                               for c in range(prepared.cols)]
        lacking = [t for t in needed if tokenizer.token_to_id(t) is None]
        if lacking:
            raise ValueError(f"the tokenizer lacks the image marker token(s) {', '.join(lacking[:4])}")
        return image_markup(prepared.rows, prepared.cols, count, image_token)
    if style == "gemma3":
        boi, eoi = tokenizer.id_to_token(config.boi_token_id), tokenizer.id_to_token(config.eoi_token_id)
        if not boi or not eoi:
            raise ValueError(f"the tokenizer lacks Gemma 3's image start / end tokens "
                             f"({config.boi_token_id}, {config.eoi_token_id})")
        full = f"\n\n{boi}{image_token * count}{eoi}\n\n"
        if not prepared.crops:
            return full
        # Gemma3Processor's words for an image with pan-and-scan crops
        return (f"Here is the original image {full} and here are some crops to help you see better "
                + " ".join([full] * prepared.crops))
    raise ValueError(f"unknown image prompt style {style!r}")


def image_run_ids(tokenizer, config, prepared: PreparedImage) -> list[int]:
    """image_markup_text's ids (the text encoded alone: where the run starts or ends with plain
    text, as Gemma 3's does, prefer the markup in image_prompt_ids, which encodes it with its
    neighbours as transformers does)."""
    style = getattr(config, "prompt_style", "llava")
    if style == "llava":  # ids directly: the image token need not be an added token
        height, width = prepared.pixels.shape[-2:]
        return [config.image_token_id] * config.tokens_for(height, width)
    return tokenizer.encode_markup(image_markup_text(tokenizer, config, prepared))


def image_prompt_ids(tokenizer, prompt: str, n_images: int, image_token_id: int, tokens_per_image: int,
                     chat: bool, system: str = "", image_runs: Optional[Sequence[Union[list[int], str]]] = None,
                     marker_id: Optional[int] = None) -> list[int]:
    """Token ids of a prompt with `n_images` images, each image token repeated `tokens_per_image`
    times (as LLaVA's processor expands it), or image i written as `image_runs[i]` when given:
    ids (image_run_ids) spliced in, or markup text (image_markup_text: any model) put in place of
    the marker before the text is encoded, as transformers' processors do (then n_images must
    equal len(image_runs)). marker_id: the token a chat template writes for an image (the model
    config's marker_token_id; default image_token_id).

    chat: a user turn whose content lists the images then the text, rendered by the model's chat
    template, which places the image markers; templates that take text only get one marker line
    per image before the text. Otherwise: the images first, then a newline, then the prompt.
    ValueError when the rendered prompt does not hold one image marker per image.
    """
    marker_id = image_token_id if marker_id is None else marker_id
    marker = tokenizer.id_to_token(marker_id)
    if not marker:
        raise ValueError(f"the tokenizer has no token {marker_id} for images")
    image_marker = tokenizer.id_to_token(image_token_id) or marker
    for name in {marker, image_marker}:
        if name in prompt or name in system:
            raise ValueError(f"the prompt contains the image marker {name}; give images with --image")
    if image_runs is None:
        image_runs = [[image_token_id] * tokens_per_image] * n_images
    if len(image_runs) != n_images:
        raise ValueError(f"{len(image_runs)} image runs for {n_images} image(s)")

    def run_ids(run: Union[list[int], str]) -> list[int]:
        return tokenizer.encode_markup(run) if isinstance(run, str) else list(run)

    if not chat:
        ids = [i for run in image_runs for i in run_ids(run)] + tokenizer.encode("\n" + prompt)
        return ([tokenizer.bos_id] if tokenizer.add_bos and tokenizer.bos_id is not None else []) + ids
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
    from .chat_template import ChatTemplateError

    try:
        text = tokenizer.apply_chat_template(messages)
    except ChatTemplateError:  # a text-only template that cannot take a list of parts
        text = ""
    if text.count(marker) != n_images:  # a text-only template: it failed, printed the list or dropped it
        plain = "".join(f"{marker}\n" for _ in range(n_images)) + prompt
        messages[-1] = {"role": "user", "content": plain}
        text = tokenizer.apply_chat_template(messages)
    pieces = text.split(marker)
    if len(pieces) - 1 != n_images:
        raise ValueError(f"the chat template placed {len(pieces) - 1} image markers for {n_images} image(s)")
    if all(isinstance(run, str) for run in image_runs):  # one text, encoded whole as the processors do
        return tokenizer.encode_markup("".join(piece + (image_runs[i] if i < n_images else "")
                                               for i, piece in enumerate(pieces)))
    ids: list[int] = []
    for i, piece in enumerate(pieces):
        if i:
            ids += run_ids(image_runs[i - 1])
        if piece:
            ids += tokenizer.encode_markup(piece)
    return ids
