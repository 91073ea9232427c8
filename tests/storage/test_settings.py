"""Settings persist across runs; bad files never lose data or crash the app."""

from __future__ import annotations

import json

from chatapp.storage.settings import AppSettings, SettingsStore


def test_round_trip(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    assert store.load() == AppSettings()
    settings = AppSettings(temperature=0.2, top_k=5, system_prompt="Réponds en français.", theme="dark")
    store.save(settings)
    assert SettingsStore(tmp_path / "settings.json").load() == settings


def test_unknown_keys_are_kept(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"temperature": 1, "future_option": [1, 2]}))
    loaded = SettingsStore(path).load()
    assert loaded.temperature == 1.0 and loaded.extra == {"future_option": [1, 2]}
    SettingsStore(path).save(loaded)
    assert json.loads(path.read_text())["future_option"] == [1, 2]


def test_wrong_type_falls_back_for_that_key_only(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"top_k": "many", "top_p": 0.5}))
    loaded = SettingsStore(path).load()
    assert loaded.top_k == AppSettings().top_k and loaded.top_p == 0.5


def test_corrupt_file_is_moved_aside_not_lost(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{ not json")
    store = SettingsStore(path)
    assert store.load() == AppSettings()
    assert "moved to settings.json.corrupt-" in store.warning
    aside = list(tmp_path.glob("settings.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
