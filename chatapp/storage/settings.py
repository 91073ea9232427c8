"""Application settings: one JSON file in the user config dir, written atomically.

Unknown keys from a newer version are kept; a corrupt file is moved aside (not lost) and
defaults are used, with a warning the UI can show.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from ..paths import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class AppSettings:
    model: str = "default"  # "default", a .gguf path or a model folder
    adapter: str = ""  # the LoRA adapter folder the chat model wears, "" for none
    device: str = "auto"
    context_len: int = 4096
    threads: int = 0  # 0: automatic
    system_prompt: str = "You are a helpful assistant."
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repetition_penalty: float = 1.1
    max_new_tokens: int = 512
    seed: int = -1  # -1: random each reply
    theme: str = "system"  # system | light | dark
    language: str = ""  # "" follows the system locale
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know


class SettingsStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warning: Optional[str] = None  # set when the file could not be read

    def load(self) -> AppSettings:
        if not self.path.exists():
            return AppSettings()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            self.warning = f"{self.path}: could not be read ({exc}); moved to {aside.name}, using defaults"
            log.warning(self.warning)
            return AppSettings()
        known = {f.name: f for f in fields(AppSettings) if f.name != "extra"}
        defaults = AppSettings()
        values: dict[str, Any] = {}
        extra = dict(data.pop("extra", {}) or {})
        for key, value in data.items():
            if key not in known:
                extra[key] = value
                continue
            default = getattr(defaults, key)
            # A value of the wrong type (hand-edited file) falls back to the default for that key.
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is type(default):
                values[key] = value
            else:
                log.warning("%s: ignoring %s=%r (expected %s)", self.path, key, value, type(default).__name__)
        return AppSettings(**values, extra=extra)

    def save(self, settings: AppSettings) -> None:
        data = asdict(settings)
        extra = data.pop("extra")
        data.update(extra)
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
