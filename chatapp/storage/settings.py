"""Application settings: one JSON file in the user config dir, written atomically.

Unknown keys from a newer version are kept; a corrupt file is moved aside (not lost) and
defaults are used, with a warning the UI can show. The sampling defaults are those of
`chatapp.sampling_settings` (defined there only). A file written by an earlier version is
migrated on load: a value equal to a default that version had is replaced by today's default
(the user never chose it), see `DEFAULT_CHANGES`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from ..paths import atomic_write_text, move_aside
from ..sampling_settings import default as sampling_default

log = logging.getLogger(__name__)


@dataclass
class AppSettings:
    model: str = "default"  # "default", a .gguf path or a model folder
    adapter: str = ""  # the LoRA adapter folder the chat model wears, "" for none
    device: str = "auto"
    context_len: int = 4096
    threads: int = 0  # 0: automatic
    system_prompt: str = "You are a helpful assistant."
    temperature: float = sampling_default("temperature")
    top_p: float = sampling_default("top_p")
    top_k: int = sampling_default("top_k")
    min_p: float = sampling_default("min_p")
    repetition_penalty: float = sampling_default("repetition_penalty")
    max_new_tokens: int = sampling_default("max_new_tokens")
    seed: int = -1  # -1: random each reply
    theme: str = "system"  # system | light | dark
    language: str = ""  # "" follows the system locale
    conversations_visible: bool = True  # the window's conversation list (collapsed: False)
    version: int = 2  # of the file's layout and defaults; files without it are version 1
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know


# {version: {key: the default that version wrote}} for every default changed since: a file of
# that version holding exactly that value gets today's default instead.
DEFAULT_CHANGES: dict[int, dict[str, Any]] = {
    1: {"repetition_penalty": 1.1},  # version 2 made greedy greedy: no penalty unless asked for
}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a settings file's object) brought to today's version; changes logged."""
    data = dict(data)
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        version = 1
    current = AppSettings.version
    for old in range(version, current):
        for key, old_default in DEFAULT_CHANGES.get(old, {}).items():
            if key in data and data[key] == old_default:
                log.info("settings: %s=%r was version %d's default; now %r", key, old_default, old,
                         getattr(AppSettings, key))
                del data[key]
    if version < current:
        data["version"] = current
    return data


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
            aside = move_aside(self.path)
            self.warning = f"{self.path}: could not be read ({exc}); moved to {aside.name}, using defaults"
            log.warning(self.warning)
            return AppSettings()
        data = migrate(data)
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
