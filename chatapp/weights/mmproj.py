"""LLaVA from GGUF: the text model's GGUF file plus llama.cpp's separate `mmproj` file (its
"clip" format) holding the vision tower and the projector, into chatapp.model.vision.LlavaModel.

The mmproj format as llama.cpp's LLaVA converter (legacy-models/convert_image_encoder_to_gguf.py)
writes it: general.architecture "clip", `clip.projector_type` "mlp", `clip.vision.*` sizes
(image_size, patch_size, embedding_length, feed_forward_length, block_count,
attention.head_count, attention.layer_norm_epsilon, image_mean, image_std, optional
feature_layer), `clip.use_gelu`; tensors `v.class_embd`, `v.patch_embd.weight`,
`v.position_embd.weight`, `v.pre_ln.*`, `v.blk.N.{attn_q,attn_k,attn_v,attn_out,ln1,ln2,
ffn_up,ffn_down}.*`, projector `mm.0.*`, `mm.2.*`. The tower in the file already stops at the
feature layer (the converter drops the layers after it, and the post-norm), so the features are
its last block's output. That converter names fc1 `ffn_down` and fc2 `ffn_up`; the newer
convert_hf_to_gguf names them the other way: the shapes decide. The image token is the text
vocabulary's `<image>`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import CorruptFileError, ShapeMismatchError, UnsupportedArchitectureError
from ..model.config import ConfigError
from ..model.transformer import Transformer
from ..model.vision import LlavaConfig, LlavaModel, VisionConfig
from .build import build_model
from .gguf_loader import load_gguf, open_gguf
from .validate import check_shapes
from .vision_files import find_mmproj  # noqa: F401  (where callers of this module look for it)

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"
_BLOCK_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                "attn_out": "self_attn.out_proj", "ln1": "layer_norm1", "ln2": "layer_norm2"}
_TOP_NAMES = {"v.class_embd": "embeddings.class_embedding", "v.patch_embd.weight": "embeddings.patch_embedding.weight",
              "v.patch_embd.bias": "embeddings.patch_embedding.bias",
              "v.position_embd.weight": "embeddings.position_embedding.weight",
              "v.pre_ln.weight": "pre_layrnorm.weight", "v.pre_ln.bias": "pre_layrnorm.bias",
              "mm.0.weight": "linear_1.weight", "mm.0.bias": "linear_1.bias",
              "mm.2.weight": "linear_2.weight", "mm.2.bias": "linear_2.bias"}


# llama.cpp's projector types (tools/mtmd/clip-impl.h, PROJECTOR_TYPE_NAMES) and the models that
# use them, to name what a refused file is; only "mlp" is run here.
PROJECTOR_FAMILIES = {
    "mlp_norm": "LLaVA with a normed MLP", "ldp": "MobileVLM", "ldpv2": "MobileVLM V2",
    "resampler": "MiniCPM-V", "adapter": "GLM-Edge-V", "qwen2vl_merger": "Qwen2-VL / Qwen2.5-VL",
    "qwen2.5vl_merger": "Qwen2.5-VL", "qwen3vl_merger": "Qwen3-VL", "gemma3": "Gemma 3",
    "gemma3nv": "Gemma 3n", "idefics3": "Idefics3 / SmolVLM", "pixtral": "Pixtral / Mistral Small",
    "internvl": "InternVL", "llama4": "Llama 4", "kimivl": "Kimi-VL", "lfm2": "LFM2-VL",
    "cogvlm": "CogVLM", "janus_pro": "Janus Pro", "ultravox": "Ultravox (audio)", "qwen2a": "Qwen2-Audio",
    "qwen2.5o": "Qwen2.5-Omni", "voxtral": "Voxtral (audio)", "step3vl": "Step3-VL",
}


def projector_type(reader) -> str:
    """The mmproj file's vision projector type: `clip.projector_type`, else (files holding more
    than one modality) `clip.vision.projector_type`, as llama.cpp reads them; "mlp" when neither
    is there (the oldest LLaVA converters wrote none)."""
    for key in ("clip.projector_type", "clip.vision.projector_type"):
        value = gguf_field(reader, key)
        if isinstance(value, str) and value:
            return value
    return "mlp"


def gguf_field(reader, key: str) -> Any:
    """The value of the GGUF metadata `key` in `reader` (gguf.GGUFReader): a number, a string, or
    a list of either; None when the file has no such key."""
    field = reader.fields.get(key)
    if field is None:
        return None
    values = [field.parts[i] for i in field.data]
    if field.types and field.types[0].name == "STRING":
        return bytes(values[0]).decode("utf-8", errors="replace")
    if field.types and field.types[0].name == "ARRAY":
        return [v.tolist()[0] if len(v) == 1 else bytes(v).decode("utf-8", "replace") for v in values]
    return values[0].tolist()[0]


def _tensor(t) -> torch.Tensor:
    from gguf import GGMLQuantizationType as Q

    if t.tensor_type not in (Q.F32, Q.F16, Q.BF16):
        from gguf.quants import dequantize

        return torch.from_numpy(np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32))
    data = np.asarray(t.data)
    if t.tensor_type == Q.BF16:
        return torch.from_numpy(data.view(np.int16).astype(np.int32) << 16).view(torch.float32)
    return torch.from_numpy(np.array(data, dtype=np.float32))  # a copy: the map is read-only


def read_mmproj(path: Path | str):
    """An mmproj file -> (VisionConfig, {our name: tensor}, image mean, image std)."""
    path = Path(path)
    reader = open_gguf(path)
    arch = gguf_field(reader, "general.architecture")
    if arch != "clip":
        raise UnsupportedArchitectureError(path, f"is not an mmproj file (general.architecture {arch!r}, not 'clip')")
    if gguf_field(reader, "clip.has_vision_encoder") is False:
        raise CorruptFileError(path, "has no vision encoder (clip.has_vision_encoder is false)")
    projector = projector_type(reader)
    if projector != "mlp":
        family = PROJECTOR_FAMILIES.get(projector)
        raise UnsupportedArchitectureError(
            path, f"has projector type {projector!r}{f' ({family})' if family else ''}, which chatapp does not run",
            "supported: 'mlp' (LLaVA 1.5 style: a CLIP or SigLIP tower and a two-layer MLP); for other vision "
            "models use their Hugging Face folder where chatapp runs the family (Idefics3 / SmolVLM, Gemma 3)")
    tensors = {t.name: t for t in reader.tensors}
    needed = ("clip.vision.image_size", "clip.vision.patch_size", "clip.vision.embedding_length",
              "clip.vision.feed_forward_length", "clip.vision.block_count", "clip.vision.attention.head_count")
    missing = [key for key in needed if gguf_field(reader, key) is None]
    if missing:
        raise CorruptFileError(path, f"lacks the mmproj metadata {', '.join(missing)}")
    for name in ("v.patch_embd.weight", "v.position_embd.weight", "mm.0.weight", "mm.2.weight"):
        if name not in tensors:
            raise ShapeMismatchError(path, f"missing tensor {name}", "the file is not a LLaVA mmproj")
    clip = "v.class_embd" in tensors
    dim = gguf_field(reader, "clip.vision.embedding_length")
    ffn = gguf_field(reader, "clip.vision.feed_forward_length")
    gelu = bool(gguf_field(reader, "clip.use_gelu"))
    try:
        vision = VisionConfig(family="clip" if clip else "siglip", dim=dim,
                              n_layers=gguf_field(reader, "clip.vision.block_count"),
                              n_heads=gguf_field(reader, "clip.vision.attention.head_count"), intermediate_size=ffn,
                              image_size=gguf_field(reader, "clip.vision.image_size"),
                              patch_size=gguf_field(reader, "clip.vision.patch_size"),
                              norm_eps=float(gguf_field(reader, "clip.vision.attention.layer_norm_epsilon") or 1e-5),
                              act=("gelu" if gelu else "quick_gelu") if clip else "gelu_pytorch_tanh")
    except ConfigError as exc:
        raise CorruptFileError(path, str(exc)) from exc
    state: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name in _TOP_NAMES:
            state[_TOP_NAMES[name]] = _tensor(t)
        elif name.startswith("v.blk."):
            _, _, index, kind, leaf = name.split(".", 4)
            if kind in _BLOCK_NAMES:
                state[f"encoder.layers.{index}.{_BLOCK_NAMES[kind]}.{leaf}"] = _tensor(t)
            elif kind in ("ffn_up", "ffn_down"):
                value = _tensor(t)
                # fc1 is (ffn, dim) in torch's (out, in) order: whichever name holds that shape is fc1
                is_fc1 = tuple(value.shape[:2]) == (ffn, dim) if leaf == "weight" else value.shape[0] == ffn
                if ffn == dim:  # shapes cannot tell: the newer converter's names
                    is_fc1 = kind == "ffn_up"
                state[f"encoder.layers.{index}.mlp.{'fc1' if is_fc1 else 'fc2'}.{leaf}"] = value
            else:
                log.warning("%s: ignoring tensor %s", path, name)
        elif name.startswith(("v.post_ln.", "v.head.")):
            continue  # after the feature layer, unused by LLaVA
        else:
            log.warning("%s: ignoring tensor %s", path, name)
    if "embeddings.class_embedding" in state:
        state["embeddings.class_embedding"] = state["embeddings.class_embedding"].reshape(-1)
    mean, std = gguf_field(reader, "clip.vision.image_mean"), gguf_field(reader, "clip.vision.image_std")
    return vision, state, mean, std


def load_llava_gguf(model_path: Path | str, mmproj_path: Path | str, dtype: torch.dtype = torch.float32,
                    device: str = "cpu", image_token_id: Optional[int] = None) -> LlavaModel:
    """A LlavaModel in eval mode from a text model GGUF and its mmproj file (its image mean / std,
    when the file has them, in config.extra). The image token is the vocabulary's `<image>` unless
    image_token_id is given; ValueError naming what is missing."""
    model_path, mmproj_path = Path(model_path), Path(mmproj_path)
    vision, state, mean, std = read_mmproj(mmproj_path)
    decoder_config, text_state = load_gguf(model_path, dtype=dtype)
    if image_token_id is None:
        image_token_id = gguf_image_token(model_path)
        if image_token_id is None:
            raise ValueError(f"{model_path}: its vocabulary has no {IMAGE_TOKEN} token, which marks where an "
                             "image goes in the prompt")
    decoder: Transformer = build_model(decoder_config, text_state, device)
    config = LlavaConfig(vision=vision, image_token_id=image_token_id, feature_layer=-1, select_strategy="default",
                         projector_act="gelu", projector_bias="linear_1.bias" in state,
                         extra={"image_mean": mean, "image_std": std})  # the preprocessing the file names
    with torch.device("meta"):
        shell = LlavaModel(config, Transformer(decoder_config))
    shell.decoder = decoder
    ours = {("multi_modal_projector." if n.startswith("linear_") else "vision_tower.") + n: t.to(dtype)
            for n, t in state.items()}
    # The converter drops the post-norm (LLaVA's features come before it): an identity stands in.
    ours.setdefault("vision_tower.post_layernorm.weight", torch.ones(vision.dim, dtype=dtype))
    ours.setdefault("vision_tower.post_layernorm.bias", torch.zeros(vision.dim, dtype=dtype))
    expected = {n: tuple(p.shape) for n, p in shell.named_parameters() if not n.startswith("decoder.")}
    check_shapes(expected, ours, mmproj_path, "the file is not the LLaVA mmproj its metadata describes",
                 implied_by="the metadata", extra_allowed=True)
    shell.load_state_dict({n: t.to(device) for n, t in ours.items() if n in expected}, strict=False, assign=True)
    log.info("loaded LLaVA from %s with %s", model_path, mmproj_path)
    return shell.eval()


def gguf_image_token(path: Path | str) -> Optional[int]:
    """The id of `<image>` in a GGUF file's vocabulary, or None."""
    reader = open_gguf(path)
    field = reader.fields.get("tokenizer.ggml.tokens")
    if field is None:
        return None
    target = IMAGE_TOKEN.encode()
    for index, part in enumerate(field.data):
        if bytes(field.parts[part]) == target:
            return index
    return None


def mmproj_image_settings(model: LlavaModel):
    """The preprocessing of a LLaVA loaded from GGUF + mmproj (load_llava_gguf): llava-hf's CLIP
    processor at the mmproj tower's size, with the mean and std the file names (CLIP's otherwise)."""
    from ..text.images import ImageSettings

    size = model.config.vision.image_size
    mean, std = model.config.extra.get("image_mean"), model.config.extra.get("image_std")
    return ImageSettings(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                         image_mean=tuple(mean or ImageSettings().image_mean),
                         image_std=tuple(std or ImageSettings().image_std))
