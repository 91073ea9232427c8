"""Sampling settings: the one definition of their defaults and ranges (no torch, no Qt).

`engine/sampling.py` applies them to logits; the window's saved settings
(`storage/settings.py`) and the CLI's flags (`commands/common.py`) take their defaults from
this dataclass. A model may recommend its own values (a Hugging Face folder's
`generation_config.json`, a GGUF file's `general.sampling.*` keys, read in `weights/`):
`with_recommended` lays those over the defaults, and the user's explicit choices over both
(the CLI: a flag given is explicit); `merged_with_recommended` does the same for the window,
whose saved settings always hold a value: one left at the default takes the recommendation.

The defaults are neutral where a setting changes what greedy decoding picks: the
repetition penalty is 1.0 (off), as in llama.cpp and transformers, so temperature 0 is
plain argmax unless the user or the model asks for a penalty.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Mapping, Optional

log = logging.getLogger(__name__)

# The settings a model file may recommend (the others are the user's: length, seed, stops).
RECOMMENDABLE = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "repeat_last_n")


class SettingsError(ValueError):
    """A sampling setting out of range; the message names the setting and its range."""


@dataclass
class SamplingSettings:
    temperature: float = 0.7
    top_k: int = 40  # 0: off
    top_p: float = 0.95  # 1.0: off
    min_p: float = 0.05  # 0.0: off
    repetition_penalty: float = 1.0  # 1.0: off
    max_new_tokens: int = 512
    repeat_last_n: int = 64  # how many recent tokens the repetition penalty looks at; 0: all
    seed: Optional[int] = None  # None: a fresh random seed per reply
    stop: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise SettingsError(f"temperature must be between 0 and 5, got {self.temperature}")
        if self.top_k < 0:
            raise SettingsError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise SettingsError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_p < 1.0:
            raise SettingsError(f"min_p must be in [0, 1), got {self.min_p}")
        if not 0.5 <= self.repetition_penalty <= 3.0:
            raise SettingsError(f"repetition_penalty must be between 0.5 and 3, got {self.repetition_penalty}")
        if self.repeat_last_n < 0:
            raise SettingsError(f"repeat_last_n must be 0 (all) or positive, got {self.repeat_last_n}")
        if self.max_new_tokens <= 0:
            raise SettingsError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise SettingsError("stop strings must be non-empty text")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def default(name: str) -> Any:
    """The default of one setting, e.g. default("top_p") == 0.95."""
    for f in fields(SamplingSettings):
        if f.name == name:
            return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    raise KeyError(name)


def checked_recommendations(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The valid ones of a model's recommended settings; each bad value is logged and dropped
    (a model with an odd recommendation still loads, with our default for that setting)."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        if name not in RECOMMENDABLE:
            continue
        expected = type(default(name))
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or (expected is int and value != int(value)):
            log.warning("%s: ignoring the recommended %s=%r (not a %s)", source, name, value, expected.__name__)
            continue
        value = expected(value)
        try:
            SamplingSettings(**{name: value})
        except SettingsError as exc:
            log.warning("%s: ignoring the recommended %s (%s)", source, name, exc)
            continue
        kept[name] = value
    return kept


def with_recommended(recommended: Mapping[str, Any], **explicit: Any) -> SamplingSettings:
    """Defaults, then the model's recommended values, then the user's explicit ones (None: not given)."""
    chosen = {k: v for k, v in explicit.items() if v is not None}
    return replace(SamplingSettings(), **{**dict(recommended), **chosen})


def _is_default(name: str, value: Any) -> bool:
    """Whether `value` is setting `name`'s default, floats as the window shows them (2 decimals)."""
    value_default = default(name)
    if isinstance(value_default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), 2) == round(value_default, 2)
    return value == value_default


def merged_with_recommended(settings: Mapping[str, Any], recommended: Mapping[str, Any]) -> dict[str, Any]:
    """The window's sampling `settings` (keyword arguments of SamplingSettings) with the model's
    `recommended` values in each recommendable field the user left at the app default; a field
    the user changed keeps the user's value. A recommended field absent from `settings` (the
    window has no repeat window field) is added. A copy; neither argument is changed."""
    merged = dict(settings)
    for name, value in recommended.items():
        if name in RECOMMENDABLE and (name not in merged or _is_default(name, merged[name])):
            merged[name] = value
    return merged


# -- presets: the window's "Precise / Balanced / Creative" -----------------------------------
# The settings a preset sets; the others (length, seed, stops) stay the user's.
PRESET_FIELDS = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")


def _balanced() -> dict[str, Any]:
    return {name: default(name) for name in PRESET_FIELDS}  # the defaults, written once above


PRESETS: dict[str, dict[str, Any]] = {
    # near-greedy: facts, code, extraction
    "precise": {"temperature": 0.2, "top_k": 20, "top_p": 0.9, "min_p": 0.1, "repetition_penalty": 1.0},
    "balanced": _balanced(),
    # more varied: brainstorming, stories
    "creative": {"temperature": 1.0, "top_k": 100, "top_p": 0.98, "min_p": 0.02, "repetition_penalty": 1.0},
}


def preset_values(name: str) -> dict[str, Any]:
    """The values preset `name` sets; KeyError names the presets there are."""
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise KeyError(f"no sampling preset {name!r}; there are {', '.join(PRESETS)}") from None


def matching_preset(values: Mapping[str, Any]) -> Optional[str]:
    """The preset whose every field `values` holds (floats to 2 decimals, as the window shows
    them), or None: the user's own ("Custom")."""
    for name, preset in PRESETS.items():
        if all(name_ in values and round(float(values[name_]), 2) == round(float(v), 2)
               for name_, v in preset.items()):
            return name
    return None
