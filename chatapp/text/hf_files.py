"""The side files of a Hugging Face tokenizer folder: which tokens are BOS/EOS, whether BOS is
added, and the chat template.

Read, in order of authority: tokenizer_config.json, special_tokens_map.json,
chat_template.jinja / chat_template.json (where newer transformers save the template),
generation_config.json (its eos_token_id may list several stop ids).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..paths import read_json_object

log = logging.getLogger(__name__)


@dataclass
class HFTokenizerSettings:
    bos_token: Optional[str] = None
    eos_token: Optional[str] = None
    add_bos: Optional[bool] = None   # None: the folder does not say
    add_eos: Optional[bool] = None
    chat_template: Optional[str] = None
    bos_id: Optional[int] = None     # generation_config.json, used when bos_token is absent
    eos_ids: list[int] = field(default_factory=list)  # generation_config.json


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    """The file's JSON object, or None when the (optional) file is absent."""
    return read_json_object(path) if path.is_file() else None


def _token_text(value: Any) -> Optional[str]:
    """A token as tokenizer_config writes it: a string, or an AddedToken dict with "content"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _pick_template(value: Any) -> Optional[str]:
    """tokenizer_config's chat_template: a string, or a list of {"name", "template"}."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {item.get("name"): item.get("template") for item in value if isinstance(item, dict)}
        if "default" in named:
            return named["default"]
        return next((template for template in named.values() if isinstance(template, str)), None)
    return None


def _ids(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, int) and not isinstance(item, bool)]
    return []


def read_hf_tokenizer_settings(folder: Path) -> HFTokenizerSettings:
    config = _read_json(folder / "tokenizer_config.json") or {}
    special_map = _read_json(folder / "special_tokens_map.json") or {}
    generation = _read_json(folder / "generation_config.json") or {}
    settings = HFTokenizerSettings()

    settings.bos_token = _token_text(config.get("bos_token")) or _token_text(special_map.get("bos_token"))
    settings.eos_token = _token_text(config.get("eos_token")) or _token_text(special_map.get("eos_token"))
    if isinstance(config.get("add_bos_token"), bool):
        settings.add_bos = config["add_bos_token"]
    if isinstance(config.get("add_eos_token"), bool):
        settings.add_eos = config["add_eos_token"]

    settings.chat_template = _pick_template(config.get("chat_template"))
    jinja_file = folder / "chat_template.jinja"
    if settings.chat_template is None and jinja_file.is_file():
        settings.chat_template = jinja_file.read_text(encoding="utf-8")
    if settings.chat_template is None:
        settings.chat_template = _pick_template((_read_json(folder / "chat_template.json") or {})
                                                .get("chat_template"))

    bos_ids = _ids(generation.get("bos_token_id"))
    settings.bos_id = bos_ids[0] if bos_ids else None
    settings.eos_ids = _ids(generation.get("eos_token_id"))
    return settings
