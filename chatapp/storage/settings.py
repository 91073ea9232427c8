"""Application settings: one JSON file in the user config dir, written atomically.

Unknown keys from a newer version are kept; a corrupt file is moved aside (not lost) and
defaults are used, with a warning the UI can show. The sampling defaults are those of
`chatapp.sampling_settings` (defined there only). Every value is checked on load against
`RANGES`/`CHOICES` (the window's spin boxes abort on a number beyond their range): a value out
of range is clamped, one of the wrong type gets its default, and the file as it was is moved
aside with a warning. Two windows may share the file: a save writes only what changed here
over the file as it is now (per key, last writer wins). A file written by an earlier version is
migrated on load: a value equal to a default that version had is replaced by today's default
(the user never chose it), see `DEFAULT_CHANGES`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from ..errors import ModelLoadError
from ..paths import atomic_write_text, move_aside, read_json_object
from ..sampling_settings import default as sampling_default
from .locks import locked

log = logging.getLogger(__name__)


@dataclass
class AppSettings:
    model: str = "default"  # "default", a .gguf path or a model folder
    adapter: str = ""  # the LoRA adapter folder the chat model wears, "" for none
    device: str = "auto"
    weights: str = "auto"  # weights in memory for models without their own choice (engine.weights_option)
    # {model spec: weights option} chosen in the model picker; a model not here uses `weights`
    model_weights: dict[str, str] = field(default_factory=dict)
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
    enable_thinking: bool = True  # models with a thinking switch (Qwen3) reason before answering
    theme: str = "system"  # system | light | dark
    language: str = ""  # "" follows the system locale
    conversations_visible: bool = True  # the window's conversation list (collapsed: False)
    server_port: int = 8765  # the window's local API server (its switch is off at every start)
    server_api_key: str = ""  # "" none; kept in this file (the user's own config dir), shown masked
    version: int = 2  # of the file's layout and defaults; files without it are version 1
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know


# Inclusive ranges of the numeric settings: what the window's spin boxes accept (a value beyond
# a QSpinBox's int32 range aborts the process) and what the engine accepts.
RANGES: dict[str, tuple[float, float]] = {
    "context_len": (256, 131072),
    "threads": (0, 256),
    "temperature": (0.0, 5.0),
    "top_p": (0.01, 1.0),
    "top_k": (0, 1000),
    "min_p": (0.0, 0.99),
    "repetition_penalty": (0.5, 3.0),
    "max_new_tokens": (1, 32768),
    "seed": (-1, 2**31 - 1),
    "server_port": (1, 65535),
    "version": (1, 1_000_000),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "device": ("auto", "cpu", "cuda", "mps"),
    "theme": ("system", "light", "dark"),
    # engine.weights_option.WEIGHT_OPTIONS (storage imports nothing of the engine; a test keeps them equal)
    "weights": ("auto", "float32", "bf16", "float16", "int8", "int4"),
}
# Most per-model weights choices kept (one per model ever opened; a bigger map is not ours).
MAX_MODEL_WEIGHTS = 1000
# Longest text setting (the system prompt, a model path, a language code), in characters.
MAX_TEXT_CHARS = 100_000
# The settings file is small; anything bigger is not ours.
MAX_FILE_BYTES = 4 << 20


def check_value(key: str, value: Any, default: Any) -> tuple[Any, str]:
    """(the value to use, "" or what was wrong with it) for one known setting."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default):
        return default, f"expected {type(default).__name__}, got {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return default, "not a finite number"
    if key in RANGES:
        low, high = RANGES[key]
        if not low <= value <= high:
            clamped = type(default)(min(max(value, low), high))
            return clamped, f"{value!r} is outside {low}..{high}"
    if key in CHOICES and value not in CHOICES[key]:
        return default, f"{value!r} is not one of {', '.join(CHOICES[key])}"
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return default, f"longer than {MAX_TEXT_CHARS:,} characters"
    if key == "model_weights":
        return _check_model_weights(value)
    return value, ""


def _check_model_weights(value: dict) -> tuple[dict, str]:
    """The per-model weights map with its bad entries dropped, and what was wrong with them."""
    good = {spec: option for spec, option in value.items()
            if isinstance(option, str) and option in CHOICES["weights"] and len(spec) <= MAX_TEXT_CHARS}
    if len(good) > MAX_MODEL_WEIGHTS:
        good = dict(list(good.items())[-MAX_MODEL_WEIGHTS:])
    dropped = len(value) - len(good)
    return good, (f"{dropped} entries dropped (not one of {', '.join(CHOICES['weights'])}, or too many)"
                  if dropped else "")


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
        # The values as this store last read or wrote them: a save writes only the keys that differ
        # (this instance's changes), so a second window's changes to other keys are not undone.
        self._known: dict[str, Any] = {}

    def load(self) -> AppSettings:
        """The settings in the file; defaults for what is missing or wrong. Never raises for the
        file's content: a file that is not a JSON object is moved aside whole; one with bad
        values is moved aside too (kept for the user) and replaced by the repaired settings."""
        self._known = _flat(AppSettings())  # no file (or a bad one): the defaults are not changes
        try:
            data = read_json_object(self.path, max_bytes=MAX_FILE_BYTES)
        except ModelLoadError as exc:  # MissingFileError, CorruptFileError: both name the file
            if not self.path.exists() and not self.path.is_symlink():
                return AppSettings()
            return self._fall_back(exc.problem)
        problems: list[str] = []
        extra = data.pop("extra", {})
        if not isinstance(extra, dict):
            problems.append(f"extra: expected an object, got {type(extra).__name__}")
            extra = {}
        extra = dict(extra)
        # the file as read: a value migrated or repaired below differs from it, so a save writes it
        self._known = {**extra, **data}
        data = migrate(data)
        known = {f.name for f in fields(AppSettings) if f.name != "extra"}
        defaults = AppSettings()
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                extra[key] = value
                continue
            values[key], problem = check_value(key, value, getattr(defaults, key))
            if problem:
                problems.append(f"{key}: {problem}")
        settings = AppSettings(**values, extra=extra)
        if problems:
            self._fall_back("; ".join(problems), keep="the other values were kept")
            try:  # the repaired settings take the file's place, so the next load reads the same
                self.save(settings)
            except OSError as exc:
                log.warning("%s", exc)
        return settings

    def _fall_back(self, problem: str, keep: str = "using defaults") -> AppSettings:
        try:
            where = f"moved to {move_aside(self.path).name}"
        except OSError as exc:
            where = f"could not be moved aside ({exc.strerror or exc})"
        self.warning = f"{self.path}: {problem}; {where}, {keep}"
        log.warning(self.warning)
        return AppSettings()

    def save(self, settings: AppSettings) -> None:
        """Write the values this store changed since it loaded (or last saved) over the file as it
        is now: another instance's changes to other keys are kept, last writer wins per key."""
        data = _flat(settings)
        with locked(self.path.with_name(self.path.name + ".lock")):
            merged = self._on_disk()
            if merged is None:  # nothing usable there: this store's settings are the file
                merged = data
            else:
                for key, value in data.items():
                    if key not in merged or key not in self._known or self._known[key] != value:
                        merged[key] = value
            atomic_write_text(self.path, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
        self._known = data

    def _on_disk(self) -> Optional[dict[str, Any]]:
        """The file's object as it is now (another instance may have written it), None if unreadable."""
        try:
            return read_json_object(self.path, max_bytes=MAX_FILE_BYTES)
        except ModelLoadError:
            return None


def _flat(settings: AppSettings) -> dict[str, Any]:
    """The file's object for `settings`: the known keys, then the kept unknown ones."""
    data = asdict(settings)
    extra = data.pop("extra")
    data.update(extra)
    return data
