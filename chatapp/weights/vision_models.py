"""The one place a vision model folder's loader is chosen, by config.json's model_type.

Every model returned has the same face (chatapp.model.vision.LlavaModel's): `config.image_token_id`,
`config.marker_token_id`, `config.prompt_style`, `config.tokens_for(h, w)`, `image_features(pixels)`,
`embed(tokens, pixels)`, `forward(tokens, pixels)` and `decoder`; Gemma 3 also
`attention_blocks(tokens)` (image tokens attend both ways: pass them to the decoder's prefill).
With chatapp.text.images' `prepare_image`, `image_markup_text` and `image_prompt_ids(...,
image_runs=..., marker_id=...)` a caller needs no per-family code.
"""

from __future__ import annotations

from pathlib import Path
import torch

from ..errors import UnsupportedArchitectureError
from .hf_loader import Progress
from .vision_files import VISION_MODEL_TYPES, folder_model_type, is_vision_folder

__all__ = ["VISION_MODEL_TYPES", "folder_model_type", "is_vision_folder", "load_vision_folder"]


def load_vision_folder(folder: Path | str, dtype: torch.dtype = torch.float32, device: str = "cpu",
                       progress: Progress = None) -> torch.nn.Module:
    """The image-text model of a Hugging Face folder, in eval mode; UnsupportedArchitectureError
    naming what the model is when we do not run it."""
    from .llava import load_llava_folder, not_yet_message, read_llava_config
    from .vision_gemma3 import load_gemma3_vision_folder
    from .vision_idefics3 import IDEFICS3_TYPES, load_idefics3_folder

    folder = Path(folder)
    kind = folder_model_type(folder)
    if kind == "gemma3":
        return load_gemma3_vision_folder(folder, dtype=dtype, device=device, progress=progress)
    if kind in IDEFICS3_TYPES:
        return load_idefics3_folder(folder, dtype=dtype, device=device, progress=progress)
    if kind == "llava" or not_yet_message(kind):
        if kind != "llava":
            read_llava_config(folder)  # raises, naming what the model is
        return load_llava_folder(folder, dtype=dtype, device=device, progress=progress)
    raise UnsupportedArchitectureError(folder / "config.json", f"model_type {kind!r} is not an image-text model",
                                       f"supported: {', '.join(VISION_MODEL_TYPES)}")
