"""LLaVA Hugging Face folders (model_type "llava"): a CLIP or SigLIP vision tower, a 2-layer
projector and a llama / mistral / qwen2 decoder, into chatapp.model.vision.LlavaModel.

Tensor names: transformers >= 4.52 saves `model.vision_tower.*`, `model.multi_modal_projector.*`,
`model.language_model.*` and `lm_head.weight`; older checkpoints (the llava-hf repositories)
`vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*` and `language_model.lm_head.*`.
transformers 5 drops the `vision_model.` level. All are read. Other image-text models get an error that names what they are.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..errors import CorruptFileError, MissingFileError, UnsupportedArchitectureError
from ..model.config import ConfigError
from ..model.transformer import Transformer
from ..model.vision import LlavaConfig, LlavaModel, VisionConfig
from ..paths import read_json_object
from .build import build_model
from .hf_loader import CONFIG_MAX_BYTES, Progress, _tensors, check_config_types, safetensors_files
from .hf_names import CONFIG_BUILDERS, our_name
from .validate import check_shapes, check_state_dict

log = logging.getLogger(__name__)

# Image-text model types we recognise but do not run yet, with what they need.
NOT_YET = {
    "llava_next": "LLaVA-NeXT (any-resolution image tiles)",
    "llava_onevision": "LLaVA-OneVision (any-resolution image tiles)",
    "qwen2_vl": "Qwen2-VL (a 2D-RoPE vision tower and M-RoPE)",
    "qwen2_5_vl": "Qwen2.5-VL (a 2D-RoPE vision tower and M-RoPE)",
    "mllama": "Llama 3.2 Vision (cross-attention layers)",
    "paligemma": "PaliGemma (Gemma decoder with prefix attention)",
}

VISION_TYPES = {"clip_vision_model": "clip", "siglip_vision_model": "siglip",
                "idefics3_vision": "idefics3", "smolvlm_vision": "idefics3"}
# transformers' defaults for fields a saved config may leave out.
_VISION_DEFAULTS = {
    "clip": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
             "image_size": 224, "patch_size": 32, "num_channels": 3, "layer_norm_eps": 1e-5,
             "hidden_act": "quick_gelu"},
    "siglip": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
               "image_size": 224, "patch_size": 16, "num_channels": 3, "layer_norm_eps": 1e-6,
               "hidden_act": "gelu_pytorch_tanh"},
    "idefics3": {"hidden_size": 1152, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 16,
                 "image_size": 224, "patch_size": 32, "num_channels": 3, "layer_norm_eps": 1e-6,
                 "hidden_act": "gelu_pytorch_tanh"},
}


def not_yet_message(model_type: Any) -> Optional[str]:
    """What an image-text model type we do not run is, or None."""
    return NOT_YET.get(model_type) if isinstance(model_type, str) else None


def is_llava_folder(folder: Path | str) -> bool:
    path = Path(folder) / "config.json"
    if not path.is_file():
        return False
    try:
        return read_json_object(path, max_bytes=CONFIG_MAX_BYTES).get("model_type") == "llava"
    except CorruptFileError:
        return False


def vision_config(hf: dict[str, Any], path: Path, default_type: str = "clip_vision_model") -> VisionConfig:
    """A vision_config object of config.json -> VisionConfig (transformers' defaults filled in)."""
    kind = hf.get("model_type", default_type)
    if kind not in VISION_TYPES:
        raise UnsupportedArchitectureError(path, f"vision_config model_type {kind!r} is not supported",
                                           f"supported: {', '.join(VISION_TYPES)}")
    family = VISION_TYPES[kind]
    check_config_types(hf, path)
    values = {**_VISION_DEFAULTS[family], **{k: v for k, v in hf.items() if v is not None}}
    return VisionConfig(family=family, dim=values["hidden_size"], n_layers=values["num_hidden_layers"],
                        n_heads=values["num_attention_heads"], intermediate_size=values["intermediate_size"],
                        image_size=values["image_size"], patch_size=values["patch_size"],
                        channels=values["num_channels"], norm_eps=float(values["layer_norm_eps"]),
                        act=values["hidden_act"])


def read_llava_config(folder: Path):
    """folder/config.json -> (text family, decoder ModelConfig, LlavaConfig)."""
    path = folder / "config.json"
    if not path.is_file():
        raise MissingFileError(folder, "has no config.json")
    hf = read_json_object(path, max_bytes=CONFIG_MAX_BYTES)
    kind = hf.get("model_type")
    if not_yet_message(kind):
        raise UnsupportedArchitectureError(path, f"is an image-text model not supported yet: {not_yet_message(kind)}",
                                           "supported image-text models: llava, idefics3, smolvlm, gemma3")
    if kind != "llava":
        raise UnsupportedArchitectureError(path, f"model_type {kind!r} is not a LLaVA model")
    for key in ("text_config", "vision_config"):
        if not isinstance(hf.get(key, {}), dict):
            raise CorruptFileError(path, f"field {key!r} must be an object")
    text = dict(hf.get("text_config") or {})
    family = text.get("model_type", "llama")
    if family not in ("llama", "mistral", "qwen2"):
        raise UnsupportedArchitectureError(path, f"text_config model_type {family!r} is not supported",
                                           "supported LLaVA decoders: llama, mistral, qwen2")
    check_config_types(text, path)
    try:
        decoder = CONFIG_BUILDERS[family](text)
        vision = vision_config(dict(hf.get("vision_config") or {}), path)
        token = hf.get("image_token_id", hf.get("image_token_index", 32000))
        if not isinstance(token, int) or not 0 <= token < decoder.vocab_size:
            raise ConfigError(f"image_token_index {token!r} is not a token of the {decoder.vocab_size}-token vocabulary")
        llava = LlavaConfig(vision=vision, image_token_id=token,
                            feature_layer=hf.get("vision_feature_layer", -2),
                            select_strategy=hf.get("vision_feature_select_strategy", "default"),
                            projector_act=hf.get("projector_hidden_act", "gelu"),
                            projector_bias=bool(hf.get("multimodal_projector_bias", True)))
    except KeyError as exc:
        raise CorruptFileError(path, f"lacks the field {exc.args[0]!r} that a LLaVA config needs") from exc
    except ConfigError as exc:
        raise CorruptFileError(path, str(exc)) from exc
    except ValueError as exc:
        raise UnsupportedArchitectureError(path, str(exc)) from exc
    decoder.name = decoder.name or hf.get("_name_or_path") or folder.name
    return family, decoder, llava


_PREFIXES = (  # (prefix in the file, where it goes)
    ("model.vision_tower.vision_model.", "vision_tower."),
    ("vision_tower.vision_model.", "vision_tower."),
    ("model.vision_tower.", "vision_tower."),  # transformers 5 (no vision_model level)
    ("vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("multi_modal_projector.", "multi_modal_projector."),
    ("model.language_model.", "text:model."),
    ("language_model.model.", "text:model."),
    ("language_model.lm_head.", "text:lm_head."),
    ("lm_head.", "text:lm_head."),
)


def prefix_router(prefixes: tuple[tuple[str, str], ...]) -> Callable[[str], Optional[str]]:
    """A `route` for load_routed: a tensor name with the first matching (prefix in the file,
    where it goes) replaced; None when no prefix matches."""
    def route(name: str) -> Optional[str]:
        for prefix, target in prefixes:
            if name.startswith(prefix):
                return target + name[len(prefix):]
        return None
    return route


_route = prefix_router(_PREFIXES)


def load_llava_folder(folder: Path | str, dtype: torch.dtype = torch.float32, device: str = "cpu",
                      progress: Progress = None) -> LlavaModel:
    """A LlavaModel in eval mode from a Hugging Face LLaVA folder."""
    folder = Path(folder)
    family, decoder_config, llava_config = read_llava_config(folder)
    model = load_routed(folder, family, decoder_config, lambda decoder: LlavaModel(llava_config, decoder), _route,
                        dtype, device, progress)
    log.info("loaded LLaVA model from %s", folder)
    return model


def load_routed(folder: Path, family: str, decoder_config, make_shell: Callable[[Transformer], torch.nn.Module],
                route: Callable[[str], Optional[str]], dtype: torch.dtype, device: str,
                progress: Progress, tie_without_head: bool = False) -> torch.nn.Module:
    """An image-text model in eval mode from a folder's safetensors: `route` maps a file's tensor
    name to "text:<HF decoder name>" (the decoder, through our name map), to the model's own
    parameter name, or to None (unknown: warned and skipped); `make_shell(decoder)` builds the
    model around a decoder. ShapeMismatchError naming the first missing / unexpected tensors.
    tie_without_head: a file without lm_head.weight ties the output layer to the embeddings
    (Idefics3 / SmolVLM configs say tie_word_embeddings at two levels, not always agreeing)."""
    text_state: dict[str, torch.Tensor] = {}
    other: dict[str, torch.Tensor] = {}
    for path, hf_name, tensor in _tensors(safetensors_files(folder), progress):
        routed = route(hf_name)
        if routed is None or routed.startswith("vision_tower.head."):  # SigLIP's pooling head: unused
            if routed is None:
                log.warning("%s: ignoring unknown tensor %s", path, hf_name)
            continue
        if not tensor.is_floating_point():
            raise CorruptFileError(path, f"tensor {hf_name} has non-float dtype {tensor.dtype}")
        tensor = tensor.to(dtype)
        if routed.startswith("text:"):
            name = our_name(routed[5:], family)
            if name:
                text_state[name] = tensor
            elif name == "":
                log.warning("%s: ignoring unknown tensor %s", path, hf_name)
        else:
            other[routed] = tensor
    if tie_without_head and "lm_head.weight" not in text_state and not decoder_config.tie_embeddings:
        log.info("%s: no lm_head.weight; the output layer is tied to the embeddings", folder)
        decoder_config = dataclasses.replace(decoder_config, tie_embeddings=True)
    if decoder_config.tie_embeddings:
        text_state.pop("lm_head.weight", None)
    check_state_dict(decoder_config, text_state, folder)
    decoder: Transformer = build_model(decoder_config, text_state, device)
    with torch.device("meta"):
        shell = make_shell(Transformer(decoder_config))
    shell.decoder = decoder
    expected = {n: tuple(p.shape) for n, p in shell.named_parameters() if not n.startswith("decoder.")}
    hint = "the file is not the image-text model its config describes"
    check_shapes(expected, other, folder, hint, extra_hint=hint)
    shell.load_state_dict({n: t.to(device) for n, t in other.items()}, strict=False, assign=True)
    return shell.eval()
