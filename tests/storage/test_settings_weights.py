"""The weights settings: a default option and one per model, checked on load like every value."""

from __future__ import annotations

import json

from chatapp.storage.settings import CHOICES, AppSettings, SettingsStore


def test_weights_choices_are_the_engines_options():
    from chatapp.engine.weights_option import WEIGHT_OPTIONS

    assert CHOICES["weights"] == WEIGHT_OPTIONS


def test_default_and_per_model_weights_round_trip(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    settings = AppSettings(weights="int8", model_weights={"default": "int4", "/m/x.gguf": "float32"})
    store.save(settings)
    again = SettingsStore(tmp_path / "settings.json").load()
    assert again.weights == "int8"
    assert again.model_weights == {"default": "int4", "/m/x.gguf": "float32"}


def test_bad_weights_values_are_repaired_and_said(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"weights": "int3", "model_weights": {"a": "int8", "b": "q4_k", "c": 4}}))
    store = SettingsStore(path)
    settings = store.load()
    assert settings.weights == "auto"
    assert settings.model_weights == {"a": "int8"}
    assert "weights: 'int3' is not one of auto, float32" in store.warning
    assert "model_weights: 2 entries dropped" in store.warning
    assert json.loads(path.read_text())["model_weights"] == {"a": "int8"}  # the repaired file


def test_per_model_weights_of_the_wrong_type_get_the_default(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"model_weights": ["int8"]}))
    store = SettingsStore(path)
    assert store.load().model_weights == {}
    assert "model_weights: expected dict, got list" in store.warning
