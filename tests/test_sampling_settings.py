"""Sampling presets: defined once beside the defaults, valid, and recognised from values."""

from __future__ import annotations

import pytest

from chatapp.sampling_settings import (PRESET_FIELDS, PRESETS, SamplingSettings, default, matching_preset,
                                       preset_values)


def test_every_preset_sets_the_same_fields_and_is_a_valid_setting():
    assert list(PRESETS) == ["precise", "balanced", "creative"]
    for name, values in PRESETS.items():
        assert set(values) == set(PRESET_FIELDS), name
        SamplingSettings(**values)  # raises SettingsError if out of range


def test_balanced_is_the_defaults_and_the_presets_are_ordered_by_temperature():
    assert PRESETS["balanced"] == {name: default(name) for name in PRESET_FIELDS}
    temperatures = [PRESETS[name]["temperature"] for name in ("precise", "balanced", "creative")]
    assert temperatures == sorted(temperatures) and len(set(temperatures)) == 3


def test_matching_preset_reads_values_as_the_window_shows_them():
    assert matching_preset(SamplingSettings().to_dict()) == "balanced"
    shown = {name: value + 1e-9 if isinstance(value, float) else value for name, value in PRESETS["precise"].items()}
    assert matching_preset(dict(shown, max_new_tokens=99)) == "precise"  # other settings do not matter
    assert matching_preset(dict(PRESETS["precise"], temperature=0.55)) is None  # custom
    assert matching_preset({"temperature": 0.2}) is None  # incomplete: no preset


def test_preset_values_is_a_copy_and_names_the_presets_on_a_typo():
    values = preset_values("creative")
    values["temperature"] = 0.0
    assert PRESETS["creative"]["temperature"] == 1.0
    with pytest.raises(KeyError, match="precise, balanced, creative"):
        preset_values("wild")


def test_merged_with_recommended_fills_only_the_fields_left_at_the_default():
    from chatapp.sampling_settings import merged_with_recommended

    user = {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_new_tokens": 512, "seed": None}
    recommended = {"temperature": 0.2, "top_p": 0.8, "repeat_last_n": 128}
    merged = merged_with_recommended(user, recommended)
    assert merged["temperature"] == 0.2  # left at the default 0.7: the model's
    assert merged["top_p"] == 0.9  # changed by the user: the user's
    assert merged["top_k"] == 40 and merged["repeat_last_n"] == 128  # not in the window: added
    assert user["temperature"] == 0.7  # a copy
    assert merged_with_recommended(user, {}) == user
    # a spin box's 0.7000000001 is the default as the window shows it; a non-sampling key is ignored
    assert merged_with_recommended({"temperature": 0.7000000001}, {"temperature": 0.3, "seed": 5}) == \
        {"temperature": 0.3}
