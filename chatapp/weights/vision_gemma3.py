"""Gemma 3 with its vision tower (model_type "gemma3", Gemma3ForConditionalGeneration) into
chatapp.model.gemma3_vision.Gemma3VisionModel: a SigLIP tower, the pooled soft-token projector and
the Gemma 3 decoder (its config and names read by weights/gemma.py as for the text-only load).

Tensor names: transformers 5's `model.vision_tower.*`, `model.multi_modal_projector.*`,
`model.language_model.*`; older checkpoints' `vision_tower.vision_model.*`,
`multi_modal_projector.*`, `language_model.model.*`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch

from ..errors import CorruptFileError, MissingFileError, UnsupportedArchitectureError
from ..model.config import ConfigError
from ..model.gemma3_vision import Gemma3VisionConfig, Gemma3VisionModel
from ..paths import read_json_object
from .hf_loader import CONFIG_MAX_BYTES, Progress
from .hf_names import CONFIG_BUILDERS
from .llava import _route as _llava_route
from .llava import load_routed, vision_config

log = logging.getLogger(__name__)


def _route(name: str) -> Optional[str]:
    routed = _llava_route(name)
    if routed is not None and not routed.startswith("text:"):
        return routed  # the tower and the projector, as LLaVA's are named
    return "text:" + name  # weights/gemma.py's gemma3_text_tensor strips the text model's prefixes


def _token(hf: dict, names: tuple[str, ...], default: int, vocab: int) -> int:
    for name in names:
        if name in hf:
            value = hf[name]
            break
    else:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < vocab:
        raise ConfigError(f"{names[0]} {value!r} is not a token of the {vocab}-token vocabulary")
    return value


def read_gemma3_vision_config(folder: Path):
    """folder/config.json -> ("gemma3", decoder ModelConfig, Gemma3VisionConfig)."""
    path = folder / "config.json"
    if not path.is_file():
        raise MissingFileError(folder, "has no config.json")
    hf = read_json_object(path, max_bytes=CONFIG_MAX_BYTES)
    if hf.get("model_type") != "gemma3":
        raise UnsupportedArchitectureError(path, f"model_type {hf.get('model_type')!r} is not Gemma 3 with vision")
    if not isinstance(hf.get("vision_config"), dict):
        raise CorruptFileError(path, "has no 'vision_config' object: a Gemma 3 checkpoint without its vision tower")
    try:
        decoder = CONFIG_BUILDERS["gemma3"](hf)
        vision = vision_config(dict(hf["vision_config"]), path, default_type="siglip_vision_model")
        vocab = decoder.vocab_size
        config = Gemma3VisionConfig(
            vision=vision,
            image_token_id=_token(hf, ("image_token_index", "image_token_id"), 262144, vocab),
            boi_token_id=_token(hf, ("boi_token_index", "boi_token_id"), 255999, vocab),
            eoi_token_id=_token(hf, ("eoi_token_index", "eoi_token_id"), 256000, vocab),
            mm_tokens_per_image=hf.get("mm_tokens_per_image", 256))
    except KeyError as exc:
        raise CorruptFileError(path, f"lacks the field {exc.args[0]!r} that a Gemma 3 config needs") from exc
    except ConfigError as exc:
        raise CorruptFileError(path, str(exc)) from exc
    except ValueError as exc:
        raise UnsupportedArchitectureError(path, str(exc)) from exc
    decoder.name = decoder.name or hf.get("_name_or_path") or folder.name
    return "gemma3", decoder, config


def load_gemma3_vision_folder(folder: Path | str, dtype: torch.dtype = torch.float32, device: str = "cpu",
                              progress: Progress = None) -> Gemma3VisionModel:
    """A Gemma3VisionModel in eval mode from a Hugging Face Gemma 3 (vision) folder."""
    folder = Path(folder)
    family, decoder_config, config = read_gemma3_vision_config(folder)
    model = load_routed(folder, family, decoder_config, lambda decoder: Gemma3VisionModel(config, decoder), _route,
                        dtype, device, progress)
    log.info("loaded Gemma 3 vision model from %s", folder)
    return model
