"""Which files hold a vision model, read without torch (the window's model list asks on the GUI
thread, which never imports torch): a vision folder's config.json model_type, and the mmproj file
beside a GGUF model. weights.vision_models and weights.mmproj load what these find."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from ..errors import CorruptFileError
from ..paths import read_json_object

log = logging.getLogger(__name__)

VISION_MODEL_TYPES = ("llava", "idefics3", "smolvlm", "gemma3")
CONFIG_MAX_BYTES = 1 << 20  # as weights.hf_loader's: real config.json files are 1-5 KB


def folder_model_type(folder: Path | str) -> Optional[Any]:
    """config.json's model_type, or None when the folder has no readable config.json."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    try:
        return read_json_object(path, max_bytes=CONFIG_MAX_BYTES).get("model_type")
    except CorruptFileError:
        return None


def is_vision_folder(folder: Path | str) -> bool:
    """Whether `folder` holds an image-text model we run."""
    return folder_model_type(folder) in VISION_MODEL_TYPES


def find_mmproj(model_path: Path | str) -> Optional[Path]:
    """The mmproj file beside a GGUF model (`mmproj*.gguf` in its folder, as LM Studio and llama.cpp
    users keep them), or None; the first by name when there are several."""
    try:
        path = Path(model_path).expanduser()
        if path.suffix.lower() != ".gguf" or path.name.lower().startswith("mmproj") or not path.is_file():
            return None
        found = sorted(p for p in path.parent.glob("*.gguf") if p.name.lower().startswith("mmproj") and p.is_file())
    except OSError:
        return None
    if len(found) > 1:
        log.info("several mmproj files beside %s; using %s", path, found[0].name)
    return found[0] if found else None
