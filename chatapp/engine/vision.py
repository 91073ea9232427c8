"""Images in the engine's chat path: loading a vision model for the window and the server, and what
the window shows of it (vision_info, estimate_vision_model).

Every family we run (LLaVA, Idefics3 / SmolVLM, Gemma 3, LLaVA from GGUF + mmproj) has one face
(chatapp.weights.vision_models); `ModelVision` adapts that face to the engine's `VisionModel`, and
engine.vision_prompt splices the images into the Engine's prefill. A GGUF file is a vision model
when an mmproj file is given (LoadOptions.mmproj, `--mmproj`) or lies beside it (`mmproj*.gguf`, as
LM Studio and llama.cpp users keep them).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from ..errors import ModelLoadError
from ..text.images import image_markup_text, prepare_image, read_image_settings
from ..text.tiled_images import TiledImageSettings
from ..weights.vision_files import find_mmproj
from .vision_prompt import (MAX_IMAGES_PER_MESSAGE, ImageAttachment, NoVisionError, VisionDecoder,  # noqa: F401
                            VisionModel, message_images, render_with_images)

__all__ = ["MAX_IMAGES_PER_MESSAGE", "ImageAttachment", "ModelVision", "NoVisionError", "VisionDecoder", "VisionModel",
           "estimate_vision_model", "image_cost", "is_vision_folder", "is_vision_spec", "load_vision",
           "load_vision_model", "message_images", "render_with_images", "vision_info"]

log = logging.getLogger(__name__)


class ModelVision:
    """A vision model of any family we run (weights.vision_models' face), as the engine uses it."""

    def __init__(self, model, settings, name: str) -> None:
        self.model, self.settings, self.name = model, settings, name
        self.config = model.config
        self.image_token_id = model.config.image_token_id
        self.marker_token_id = model.config.marker_token_id
        self.uses_blocks = hasattr(model, "attention_blocks")

    def prepare(self, image):
        return prepare_image(image, self.settings)

    def image_token_count(self, prepared) -> int:
        tiles, _, height, width = prepared.pixels.shape
        return tiles * self.config.tokens_for(height, width)

    def markup(self, tokenizer, prepared) -> Union[list[int], str]:
        if getattr(self.config, "prompt_style", "llava") == "llava":  # ids: the image token need not be an added token
            return [self.image_token_id] * self.image_token_count(prepared)
        return image_markup_text(tokenizer, self.config, prepared)

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.model.image_features(pixels)  # (tiles, per tile, dim)
        return features.reshape(-1, features.shape[-1])

    def attention_blocks(self, tokens: torch.Tensor) -> Optional[torch.Tensor]:
        return self.model.attention_blocks(tokens)

    @property
    def default_image_tokens(self) -> int:
        """Image positions an image fills at most (Idefics3's depend on the image's size: the
        largest tile grid its processor makes plus the whole image; Gemma 3's with pan-and-scan:
        the whole image plus its most crops; the others' are fixed)."""
        settings = self.settings
        if isinstance(settings, TiledImageSettings):
            tile = settings.tile
            per_tile = self.config.tokens_for(tile, tile)
            if not settings.do_image_splitting:
                return per_tile
            longest = settings.size.get("longest_edge") or max(settings.size.get("height", 0),
                                                                 settings.size.get("width", 0))
            side = max(1, math.ceil(longest / tile))
            return per_tile * (side * side + 1 if side > 1 else 1)
        scan = getattr(settings, "pan_and_scan", None)  # Gemma 3: the whole image and at most max_num_crops crops
        return int(self.config.tokens_per_image) * (1 + (scan.max_num_crops if scan else 0))


def is_vision_folder(spec: Union[str, Path]) -> bool:
    """Whether `spec` is a vision model folder we run (LLaVA, Idefics3 / SmolVLM, Gemma 3)."""
    from ..weights.vision_files import is_vision_folder as folder_check

    try:
        path = Path(spec).expanduser()
        return path.is_dir() and folder_check(path)
    except OSError:
        return False


def is_vision_spec(spec: Union[str, Path], mmproj: Optional[str] = None) -> bool:
    """Whether `spec` loads as a vision model: a vision folder, or a GGUF file with an mmproj file
    given or beside it."""
    if is_vision_folder(spec):
        return True
    return str(spec).lower().endswith(".gguf") and bool(mmproj or find_mmproj(spec))


def load_vision(path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32, progress=None,
                mmproj: Optional[Union[str, Path]] = None) -> tuple[nn.Module, ModelVision]:
    """(decoder Transformer, ModelVision) from a vision model folder, or a GGUF file and its
    mmproj file; weights.vision_models chooses a folder's loader."""
    if mmproj is not None:
        from ..weights.mmproj import load_llava_gguf, mmproj_image_settings

        model = load_llava_gguf(path, mmproj, dtype=dtype, device=device)
        settings = mmproj_image_settings(model)
    else:
        from ..weights.vision_models import load_vision_folder

        model = load_vision_folder(path, dtype=dtype, device=device, progress=progress)
        settings = read_image_settings(path)
    return model.decoder, ModelVision(model, settings, model.decoder.config.name or path.name)


def vision_info(model) -> dict:
    """ModelInfo's image fields for a loaded model (image_tokens: the most one image fills)."""
    if not isinstance(model, VisionDecoder):
        return {}
    return {"vision": True, "max_images": MAX_IMAGES_PER_MESSAGE,
            "image_tokens": int(getattr(model.vision, "default_image_tokens", 0))}


def image_cost(model, image: ImageAttachment) -> int:
    """Image positions `image` fills in this model's prompt (ImageError for a bad image); run it
    where model work runs (it decodes the image)."""
    if not isinstance(model, VisionDecoder):
        raise NoVisionError(getattr(getattr(model, "config", None), "name", "") or "the loaded model")
    return model.vision.image_token_count(model.prepared(image))


def load_vision_model(spec: str, device: str = "auto", context_len: Optional[int] = None, progress=None,
                      adapter: Optional[str] = None, weights: str = "auto", mmproj: Optional[str] = None, **_ignored):
    """engine.loader.LoadedModel for a vision model (is_vision_spec): its decoder wrapped with the
    images. Vision models load in float32 only: `weights` other than auto/float32 is refused."""
    import time

    from ..text.tokenizer import Tokenizer
    from ..weights.hf_loader import hf_sampling_defaults
    from .device import choose_device
    from .loader import LoadedModel

    path = Path(spec).expanduser()
    gguf = path.suffix.lower() == ".gguf"
    found = gguf and mmproj is None  # an mmproj file beside the model, not asked for: text-only if it cannot be used
    if found:
        mmproj = find_mmproj(path)
        if mmproj is None:
            raise ValueError(f"{path}: a GGUF file holds a text-only model, which cannot see images; give its vision part with --mmproj FILE")
        if adapter or weights not in ("auto", "float32"):
            log.info("loading %s without %s (a vision model takes no adapter and loads in float32)", path, mmproj.name)
            return _text_only(spec, device, context_len, progress, adapter, weights)
    if adapter:
        raise ValueError("a LoRA adapter on a vision model is not supported yet")
    if weights not in ("auto", "float32"):
        raise ValueError(f"--weights {weights} is not supported for vision models yet: they load in float32 "
                         "(choose auto or float32)")
    start = time.perf_counter()
    target = choose_device(device)
    report = progress or (lambda stage, fraction: None)
    report("config", 0.0)
    try:
        decoder, vision = load_vision(path, device=str(target), mmproj=Path(mmproj).expanduser() if gguf else None,
                                      progress=lambda done, total: report("weights", done / total if total else 0.0))
    except (ValueError, ModelLoadError) as exc:  # a projector we do not run, a vocabulary without <image>
        if not found:
            raise
        log.warning("%s: the mmproj file beside it cannot be used (%s); loading the text model alone", path, exc)
        return _text_only(spec, device, context_len, progress, adapter, weights)
    report("tokenizer", 0.0)
    tokenizer = Tokenizer.from_gguf(path) if gguf else Tokenizer.from_hf_folder(path)
    model = VisionDecoder(decoder, vision)
    report("ready", 1.0)
    return LoadedModel(name=decoder.config.name or path.name, path=path, kind="gguf" if gguf else "hf-folder",
                       config=decoder.config, model=model, tokenizer=tokenizer, device=target, dtype=torch.float32,
                       load_s=time.perf_counter() - start, sampling_defaults={} if gguf else hf_sampling_defaults(path),
                       weights="float32", weights_reason="vision models load in float32")


def _text_only(spec, device, context_len, progress, adapter, weights):
    from .loader import load_model

    return load_model(spec, device=device, context_len=context_len, progress=progress, adapter=adapter,
                      weights=weights)


def _vision_params(path: Path, mmproj: Optional[Path]) -> tuple[object, int]:
    """(decoder ModelConfig, parameters of the vision tower and projector), read without the weights."""
    from dataclasses import replace

    from ..model.transformer import Transformer
    from ..weights.vision_files import folder_model_type

    if mmproj is not None:
        from ..weights.gguf_loader import gguf_config, open_gguf

        from ..weights.mmproj import gguf_field

        reader = open_gguf(mmproj)
        config = gguf_config(open_gguf(path), path)
        # as load_llava_gguf builds it: what follows the feature layer dropped, an identity post-norm added
        kept = sum(int(t.n_elements) for t in reader.tensors if not t.name.startswith(("v.post_ln.", "v.head.")))
        return config, kept + 2 * int(gguf_field(reader, "clip.vision.embedding_length") or 0)
    kind = folder_model_type(path)
    if kind == "gemma3":
        from ..model.gemma3_vision import Gemma3VisionModel as shell_cls
        from ..weights.vision_gemma3 import read_gemma3_vision_config as read
    elif kind in ("idefics3", "smolvlm"):
        from ..model.idefics3 import Idefics3Model as shell_cls
        from ..weights.vision_idefics3 import read_idefics3_config as read
    else:
        from ..model.vision import LlavaModel as shell_cls
        from ..weights.llava import read_llava_config as read
    _family, config, vision_config = read(path)
    with torch.device("meta"):
        shell = shell_cls(vision_config, Transformer(replace(config, n_layers=1, layer_types=None)))
    return config, sum(p.numel() for n, p in shell.named_parameters() if not n.startswith("decoder."))


def estimate_vision_model(spec: str, device: str = "auto", context_len: Optional[int] = None,
                          mmproj: Optional[str] = None, **_ignored) -> dict:
    """engine.loader.estimate_model's dict for a vision model (float32, the vision tower and
    projector counted with the weights); read from its config (or GGUF headers) only."""
    from dataclasses import replace

    from .device import available_memory, choose_device, estimate_memory
    from .weights_option import fit_word

    path = Path(spec).expanduser()
    gguf = path.suffix.lower() == ".gguf"
    projector = (Path(mmproj).expanduser() if mmproj else find_mmproj(path)) if gguf else None
    try:
        config, vision_params = _vision_params(path, projector)
    except (ValueError, ModelLoadError):
        if not gguf or mmproj:
            raise
        from .loader import estimate_model  # the mmproj beside it is unreadable: the text model loads alone

        return estimate_model(spec, device=device, context_len=context_len)
    target = choose_device(device)
    context = min(context_len or config.max_seq_len, config.max_seq_len)
    estimate = estimate_memory(config, context, torch.float32)
    estimate = replace(estimate, weights_bytes=estimate.weights_bytes + 4 * vision_params)
    free = available_memory(target)
    return {"name": config.name or path.name, "n_params": config.n_params + vision_params, "context_len": context,
            "device": str(target), "dtype": "float32", "memory": estimate.describe(),
            "memory_bytes": estimate.total_bytes, "memory_parts": estimate.parts(), "free_bytes": free,
            "fits": free is None or estimate.total_bytes <= free, "weights": "float32",
            "fit": fit_word(estimate.total_bytes, free), "options": {}}
