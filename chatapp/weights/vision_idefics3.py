"""Idefics3 / SmolVLM Hugging Face folders (model_type "idefics3" or "smolvlm") into
chatapp.model.idefics3.Idefics3Model: a SigLIP-like tower (vision_config model_type
idefics3_vision / smolvlm_vision), the pixel-shuffle connector, a llama decoder.

Tensor names as transformers saves them: `model.vision_model.*`, `model.connector.*`,
`model.text_model.*`, `lm_head.weight` (the unprefixed `vision_model.*` / `connector.*` /
`text_model.*` of older Idefics3Model checkpoints are read too).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import CorruptFileError, MissingFileError, UnsupportedArchitectureError
from ..model.config import ConfigError
from ..model.idefics3 import Idefics3Config, Idefics3Model
from ..paths import read_json_object
from .hf_loader import CONFIG_MAX_BYTES, Progress, check_config_types
from .hf_names import CONFIG_BUILDERS
from .llava import load_routed, prefix_router, vision_config

log = logging.getLogger(__name__)

IDEFICS3_TYPES = ("idefics3", "smolvlm")
_DECODERS = ("llama",)

_PREFIXES = (  # (prefix in the file, where it goes)
    ("model.vision_model.", "vision_tower."),
    ("vision_model.", "vision_tower."),
    ("model.connector.", "connector."),
    ("connector.", "connector."),
    ("model.text_model.", "text:model."),
    ("text_model.", "text:model."),
    ("lm_head.", "text:lm_head."),
)


_route = prefix_router(_PREFIXES)


def read_idefics3_config(folder: Path):
    """folder/config.json -> (text family, decoder ModelConfig, Idefics3Config)."""
    path = folder / "config.json"
    if not path.is_file():
        raise MissingFileError(folder, "has no config.json")
    hf = read_json_object(path, max_bytes=CONFIG_MAX_BYTES)
    kind = hf.get("model_type")
    if kind not in IDEFICS3_TYPES:
        raise UnsupportedArchitectureError(path, f"model_type {kind!r} is not an Idefics3 / SmolVLM model")
    for key in ("text_config", "vision_config"):
        if not isinstance(hf.get(key, {}), dict):
            raise CorruptFileError(path, f"field {key!r} must be an object")
    text = dict(hf.get("text_config") or {})
    family = text.get("model_type", "llama")
    if family not in _DECODERS:
        raise UnsupportedArchitectureError(path, f"text_config model_type {family!r} is not supported",
                                           f"supported {kind} decoders: {', '.join(_DECODERS)}")
    if isinstance(hf.get("tie_word_embeddings"), bool):  # the top level is what transformers ties by
        text["tie_word_embeddings"] = hf["tie_word_embeddings"]
    check_config_types(text, path)
    try:
        decoder = CONFIG_BUILDERS[family](text)
        vision = vision_config(dict(hf.get("vision_config") or {}), path, default_type=f"{kind}_vision")
        token = hf.get("image_token_id", 128257)
        if not isinstance(token, int) or isinstance(token, bool) or not 0 <= token < decoder.vocab_size:
            raise ConfigError(f"image_token_id {token!r} is not a token of the {decoder.vocab_size}-token vocabulary")
        config = Idefics3Config(vision=vision, image_token_id=token, scale_factor=hf.get("scale_factor", 2))
    except KeyError as exc:
        raise CorruptFileError(path, f"lacks the field {exc.args[0]!r} that an {kind} config needs") from exc
    except ConfigError as exc:
        raise CorruptFileError(path, str(exc)) from exc
    except ValueError as exc:
        raise UnsupportedArchitectureError(path, str(exc)) from exc
    decoder.name = decoder.name or hf.get("_name_or_path") or folder.name
    return family, decoder, config


def load_idefics3_folder(folder: Path | str, dtype: torch.dtype = torch.float32, device: str = "cpu",
                         progress: Progress = None) -> Idefics3Model:
    """An Idefics3Model in eval mode from a Hugging Face Idefics3 / SmolVLM folder."""
    folder = Path(folder)
    family, decoder_config, config = read_idefics3_config(folder)
    model = load_routed(folder, family, decoder_config, lambda decoder: Idefics3Model(config, decoder), _route,
                        dtype, device, progress, tie_without_head=True)
    log.info("loaded Idefics3 / SmolVLM model from %s", folder)
    return model
